package probe

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
	"github.com/mcpcert/mcp_cert_exporter/internal/tooltest"
)

// openSSLVersionFlags are s_client's switches for one protocol version.
var openSSLVersionFlags = map[uint16]string{
	tls.VersionTLS10: "-tls1", tls.VersionTLS11: "-tls1_1", tls.VersionTLS12: "-tls1_2", tls.VersionTLS13: "-tls1_3",
}

// openSSLAccepts handshakes with s_client at one version, optionally with
// one cipher. Security level 0 lets Debian's OpenSSL 3 speak TLS 1.0 and 1.1
// and use the weak suites at all.
func openSSLAccepts(t *testing.T, openssl, addr string, v uint16, cipher string) bool {
	t.Helper()
	if cipher == "" {
		cipher = "ALL:COMPLEMENTOFALL"
	}
	cmd := exec.Command(openssl, "s_client", "-connect", addr, "-servername", "localhost", "-brief",
		openSSLVersionFlags[v], "-cipher", cipher+":@SECLEVEL=0")
	cmd.Stdin = strings.NewReader("")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("running openssl: %v", err)
	}
	established := bytes.Contains(out, []byte("CONNECTION ESTABLISHED"))
	if established != (err == nil) {
		t.Fatalf("openssl exit %v but output:\n%s", err, out)
	}
	return established
}

// openSSLNames maps IANA suite names, which Go uses, to OpenSSL's.
func openSSLNames(t *testing.T, openssl string) map[string]string {
	t.Helper()
	out, err := exec.Command(openssl, "ciphers", "-stdname", "ALL:COMPLEMENTOFALL:@SECLEVEL=0").Output()
	if err != nil {
		t.Fatalf("openssl ciphers: %v", err)
	}
	names := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 3 && f[1] == "-" {
			names[f[0]] = f[2]
		}
	}
	return names
}

// TestScanAgreesWithOpenSSL compares the protocol and cipher scans with
// OpenSSL's s_client, an independent TLS implementation, on a legacy server
// (TLS 1.0–1.2, every suite Go has, RSA key) and a modern one.
func TestScanAgreesWithOpenSSL(t *testing.T) {
	openssl := tooltest.Require(t, "openssl")
	names := openSSLNames(t, openssl)
	p := newPKI(t)
	rsaLeaf := p.inter.Issue(short(testpki.Options{RSABits: 2048}))
	legacy := func(c *tls.Config) {
		c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS12
		c.CipherSuites = offeredSuites
	}
	for _, srv := range []struct {
		name string
		mod  func(*tls.Config)
	}{{"legacy", legacy}, {"modern", nil}} {
		t.Run(srv.name, func(t *testing.T) {
			addr := serve(t, rsaLeaf.TLS(p.inter), srv.mod)
			r := scanOf(t, endpoint(addr, config.TLSConfig{CAFile: p.rootFile}), PostureOptions{})
			if len(r.Unknown) > 0 {
				t.Fatalf("unknown: %+v", r.Unknown)
			}
			for _, v := range r.Versions {
				if got := openSSLAccepts(t, openssl, addr, v.Version, ""); got != v.Accepted {
					t.Errorf("%s: openssl accepted %v, our scan %v", tls.VersionName(v.Version), got, v.Accepted)
				}
			}
			for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS12} {
				compareSuites(t, openssl, addr, names, r, v)
			}
		})
	}
}

func compareSuites(t *testing.T, openssl, addr string, names map[string]string, r *PostureResult, v uint16) {
	t.Helper()
	ours := suitesAt(r, v)
	var theirs, compared []string
	for _, id := range suitesFor(v) {
		name := tls.CipherSuiteName(id)
		ossl, ok := names[name]
		if !ok {
			continue // this OpenSSL build lacks it (RC4, say)
		}
		compared = append(compared, name)
		if openSSLAccepts(t, openssl, addr, v, ossl) {
			if !SuiteSecure(id) {
				name = "!" + name
			}
			theirs = append(theirs, name)
		}
	}
	if len(compared) == 0 {
		t.Fatalf("%s: OpenSSL knows none of Go's suites", tls.VersionName(v))
	}
	ours = slices.DeleteFunc(ours, func(s string) bool { return !slices.Contains(compared, strings.TrimPrefix(s, "!")) })
	slices.Sort(theirs)
	if !slices.Equal(ours, theirs) {
		t.Errorf("%s suites:\n ours    %v\n openssl %v", tls.VersionName(v), ours, theirs)
	}
}
