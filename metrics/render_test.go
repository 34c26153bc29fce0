package metrics

import (
	"crypto/tls"
	"testing"
)

// The kept suite names are crypto/tls's, unknown IDs included.
func TestSuiteNameIsCryptoTLSs(t *testing.T) {
	for id := range 1 << 16 {
		if got, want := suiteName(uint16(id)), tls.CipherSuiteName(uint16(id)); got != want {
			t.Fatalf("suiteName(%#04x) = %q, crypto/tls says %q", id, got, want)
		}
	}
}
