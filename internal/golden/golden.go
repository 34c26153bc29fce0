// Package golden checks generated files that are committed: the file must
// hold exactly what its generator renders now, and -update rewrites it.
package golden

import (
	"bytes"
	"os"
	"testing"
)

// Check compares path with want, after writing want to it when update is
// set. regenerate is the command that updates the file, for the message.
func Check(t testing.TB, path string, want []byte, update bool, regenerate string) {
	t.Helper()
	if update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatalf("writing %s: %v", path, err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is not what its sources generate; run: %s", path, regenerate)
	}
}
