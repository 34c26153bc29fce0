package probe

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/mcpcert/mcp_cert_exporter/config"
)

// TestOCSPStapleAgreesWithOpenSSL staples responses made by `openssl ocsp
// -index` from a real server and compares our status with what `openssl
// ocsp -respin` makes of the same response. The leaf's issuer is an
// intermediate, so its embedded certificate is not self-signed.
func TestOCSPStapleAgreesWithOpenSSL(t *testing.T) {
	p := newOSSLPKI(t)
	now, past, future := p.now, p.past, p.future
	root := p.ca("root", "OCSP Root", "")
	inter := p.ca("inter", "OCSP Intermediate", "root")
	p.issue("responder", "responder", "OCSP Responder", "inter", "ocsp_ext", past, future)
	p.issue("noeku", "noeku", "Responder Without EKU", "inter", "noeku_ext", past, future)
	p.issue("good", "good", "localhost", "inter", "leaf_ext", now.Add(-day), now.Add(80*day))
	revoked := p.issue("revoked", "revoked", "localhost", "inter", "leaf_ext", now.Add(-day), now.Add(80*day))
	p.run("ca", "-config", "ca.cnf", "-revoke", revoked, "-cert", inter, "-keyfile", p.key("inter"))

	for _, tc := range []struct {
		name, leaf, signer string
		extra              []string
		want, openssl      string // our status; OpenSSL's status line, or its verify failure
	}{
		{name: "signed by the issuer, no certificate", leaf: "good", signer: "inter", extra: []string{"-resp_no_certs"},
			want: OCSPGood, openssl: "good"},
		{name: "signed by the issuer, its certificate embedded", leaf: "good", signer: "inter", want: OCSPGood, openssl: "good"},
		{name: "delegated responder", leaf: "good", signer: "responder", want: OCSPGood, openssl: "good"},
		{name: "delegated responder without OCSP signing EKU", leaf: "good", signer: "noeku", want: OCSPInvalid,
			openssl: "missing ocspsigning usage"},
		{name: "revoked, signed by the issuer", leaf: "revoked", signer: "inter", want: OCSPRevoked, openssl: "revoked"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leaf := p.path(tc.leaf + ".pem")
			resp := p.path(tc.leaf + "-" + tc.signer + ".der")
			p.run(append([]string{"ocsp", "-index", "index.txt", "-CA", inter, "-issuer", inter, "-cert", leaf,
				"-rsigner", p.path(tc.signer + ".pem"), "-rkey", p.key(tc.signer), "-respout", resp, "-ndays", "1", "-no_nonce"},
				tc.extra...)...)
			cmd := exec.Command(p.openssl, "ocsp", "-respin", resp, "-issuer", inter, "-CAfile", root, "-verify_other", inter,
				"-cert", leaf, "-no_nonce")
			out, _ := cmd.CombinedOutput() // a failed verification exits 1; the output says why
			if !strings.Contains(string(out), tc.openssl) {
				t.Fatalf("openssl ocsp does not say %q:\n%s", tc.openssl, out)
			}
			if verified := strings.Contains(string(out), "Response verify OK"); verified != (tc.want != OCSPInvalid) {
				t.Fatalf("openssl verified the response: %v, we say %s:\n%s", verified, tc.want, out)
			}
			staple, err := os.ReadFile(resp)
			if err != nil {
				t.Fatal(err)
			}
			addr := p.serve(p.bundle(tc.leaf+"-chain.pem", leaf, inter), tc.leaf, staple)
			r := probeOnce(t, endpoint(addr, config.TLSConfig{CAFile: root, ServerName: "localhost"}))
			if r.OCSP == nil || r.OCSP.Status != tc.want {
				t.Fatalf("OCSP %+v, want status %s", r.OCSP, tc.want)
			}
			if !r.Verified {
				t.Errorf("chain not verified: %s %s", r.Reason, r.Detail)
			}
		})
	}
}
