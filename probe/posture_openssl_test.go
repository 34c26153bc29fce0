package probe

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"io"
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

// startSServer runs openssl s_server on 127.0.0.1 with args until the test
// ends and returns its address.
func startSServer(t *testing.T, openssl string, args ...string) string {
	t.Helper()
	cmd := exec.Command(openssl, append([]string{"s_server", "-accept", "127.0.0.1:0", "-www"}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if addr, ok := strings.CutPrefix(sc.Text(), "ACCEPT "); ok {
			go func() { _, _ = io.Copy(io.Discard, out) }()
			return addr
		}
	}
	t.Fatalf("openssl s_server did not start: %v", sc.Err())
	return ""
}

// TestVersionOnlyThroughSuitesGoLacks: a server that speaks TLS 1.1 only
// with Camellia, which Go lacks, answers our TLS 1.1 handshake with
// handshake_failure, not protocol_version. OpenSSL's s_client shows it
// accepts TLS 1.1; our scan must call the version unknown, never refused,
// so that policy.min_version is not passed on a guess.
func TestVersionOnlyThroughSuitesGoLacks(t *testing.T) {
	openssl := tooltest.Require(t, "openssl")
	p := newPKI(t)
	leaf := p.inter.Issue(short(testpki.Options{RSABits: 2048}))
	chain := testpki.WriteFile(t, p.dir, "camellia.pem", testpki.Bundle(leaf, p.inter))
	key := testpki.WriteFile(t, p.dir, "camellia.key", leaf.KeyPEM())
	addr := startSServer(t, openssl, "-cert", chain, "-key", key, "-tls1_1", "-cipher", "CAMELLIA128-SHA:@SECLEVEL=0")
	if !openSSLAccepts(t, openssl, addr, tls.VersionTLS11, "") {
		t.Fatal("openssl s_client could not speak TLS 1.1 to the server")
	}
	r := scanOf(t, endpoint(addr, config.TLSConfig{CAFile: p.rootFile}), PostureOptions{})
	want := []VersionResult{{Version: tls.VersionTLS10}, {Version: tls.VersionTLS12}, {Version: tls.VersionTLS13}}
	if !slices.Equal(r.Versions, want) {
		t.Errorf("versions %+v, want TLS 1.0, 1.2 and 1.3 refused and TLS 1.1 absent", r.Versions)
	}
	i := slices.IndexFunc(r.Unknown, func(u UnknownCheck) bool { return u.Check == "version:TLS 1.1" })
	if i < 0 || !strings.Contains(r.Unknown[i].Detail, "handshake_failure") {
		t.Fatalf("TLS 1.1 is not unknown with handshake_failure named: %+v", r.Unknown)
	}
	// That an unknown version breaches no rule is policy's to test
	// (TestPolicyViolations), on results like this one.
}
