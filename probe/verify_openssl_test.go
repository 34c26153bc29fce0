package probe

import (
	"context"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/config"
)

// osslVerifyReasons maps the X509_V_ERR codes OpenSSL reports for a server's
// chain to our reasons; docs/reasons.md lists the same.
var osslVerifyReasons = map[int]Reason{
	0:  ReasonNone,
	2:  ReasonVerifyFailed,           // unable to get issuer certificate
	9:  ReasonCertificateNotYetValid, // certificate is not yet valid
	10: ReasonCertificateExpired,     // certificate has expired
	18: ReasonVerifyFailed,           // self-signed certificate
	19: ReasonVerifyFailed,           // self-signed certificate in certificate chain
	20: ReasonVerifyFailed,           // unable to get local issuer certificate
	21: ReasonVerifyFailed,           // unable to verify the first certificate
	62: ReasonHostnameMismatch,       // hostname mismatch
}

var osslVerifyError = regexp.MustCompile(`verify error:num=(\d+):`)

// osslVerdict connects with s_client, which stops at the first error
// (-verify_return_error), and returns OpenSSL's verify code.
func osslVerdict(t *testing.T, p *osslPKI, addr, caFile string, partial bool) int {
	t.Helper()
	args := []string{"s_client", "-connect", addr, "-servername", "localhost", "-verify_return_error",
		"-verify_hostname", "localhost", "-CAfile", caFile}
	if partial {
		args = append(args, "-partial_chain")
	}
	cmd := exec.Command(p.openssl, args...)
	cmd.Stdin = strings.NewReader("")
	out, _ := cmd.CombinedOutput() // a failed verification is a non-zero exit; the output says which
	if m := osslVerifyError.FindSubmatch(out); m != nil {
		code, _ := strconv.Atoi(string(m[1]))
		return code
	}
	if !strings.Contains(string(out), "Verify return code: 0 (ok)") {
		t.Fatalf("openssl s_client gave no verdict:\n%s", out)
	}
	return 0
}

// oracleCell is one chain the server sends, with the ca_file we trust.
type oracleCell struct {
	name    string
	chain   []string // PEM files, leaf first
	key     string   // the leaf's key name
	caFile  string
	partial bool // ca_file holds no root: OpenSSL needs -partial_chain to accept that, Go always does
	want    Reason
	check   func(t *testing.T, r *TLSResult)
}

// TestReasonsAgreeWithOpenSSL issues a matrix of chains with the openssl CLI
// (validity windows of leaf, intermediate and root, a missing intermediate,
// a wrong host, a self-signed leaf, an untrusted root, a reissued CA),
// serves each from a real TLS server and requires our reason to be the one
// OpenSSL's s_client reports, through osslVerifyReasons. Each cell has one
// fault, so the two precedences (ours: trust, then dates, then the name;
// OpenSSL's: trust, then the name, then dates) cannot differ.
func TestReasonsAgreeWithOpenSSL(t *testing.T) {
	p := newOSSLPKI(t)
	now, past, future := p.now, p.past, p.future
	root := p.ca("root", "Oracle Root", "")
	inter := p.ca("inter", "Oracle Intermediate", "root")
	leaf := func(name, issuer, ext string, from, to time.Time) string {
		return p.issue(name, name, "localhost", issuer, ext, from, to)
	}
	valid := func(name, issuer string) string {
		return leaf(name, issuer, "leaf_ext", now.Add(-day), now.Add(80*day))
	}

	// A CA reissued with its name and key, after the leaf it issued expired.
	p.issue("oldroot", "reroot", "Reissued Root", "", "ca_ext", past, future)
	reissuedRoot := p.issue("newroot", "reroot", "Reissued Root", "", "ca_ext", now.Add(-day), future)
	p.issue("oldinter", "reinter", "Reissued Intermediate", "root", "ca_ext", past, future)
	reissuedInter := p.issue("newinter", "reinter", "Reissued Intermediate", "root", "ca_ext", now.Add(-day), future)

	staleInter := p.issue("staleinter", "staleinter", "Expired Intermediate", "root", "ca_ext", past, now.Add(-day))
	earlyInter := p.issue("earlyinter", "earlyinter", "Future Intermediate", "root", "ca_ext", now.Add(day), future)
	staleRoot := p.issue("staleroot", "staleroot", "Expired Root", "", "ca_ext", past, now.Add(-day))
	p.ca("staleroot-inter", "Intermediate of Expired Root", "staleroot")
	otherRoot := p.ca("otherroot", "Untrusted Root", "")
	otherInter := p.ca("otherinter", "Untrusted Intermediate", "otherroot")
	sha1Inter := p.issue("sha1inter", "sha1inter", "SHA-1 Intermediate", "root", "ca_ext", past, future, "-md", "sha1")

	cells := []oracleCell{
		{name: "good", chain: []string{valid("good", "inter"), inter}, key: "good", caFile: root},
		{name: "leaf expired", chain: []string{leaf("expired", "inter", "leaf_ext", now.Add(-90*day), now.Add(-2*day)), inter},
			key: "expired", caFile: root, want: ReasonCertificateExpired},
		{name: "leaf not yet valid", chain: []string{leaf("early", "inter", "leaf_ext", now.Add(2*day), now.Add(90*day)), inter},
			key: "early", caFile: root, want: ReasonCertificateNotYetValid},
		{name: "intermediate expired", chain: []string{valid("of-stale", "staleinter"), staleInter},
			key: "of-stale", caFile: root, want: ReasonCertificateExpired},
		{name: "intermediate not yet valid", chain: []string{valid("of-early", "earlyinter"), earlyInter},
			key: "of-early", caFile: root, want: ReasonCertificateNotYetValid},
		{name: "root in ca_file expired", chain: []string{valid("of-staleroot", "staleroot-inter"), p.path("staleroot-inter.pem")},
			key: "of-staleroot", caFile: staleRoot, want: ReasonCertificateExpired},
		{name: "missing intermediate", chain: []string{valid("alone", "inter")}, key: "alone", caFile: root, want: ReasonVerifyFailed},
		{name: "wrong host", chain: []string{leaf("other", "inter", "otherhost_ext", now.Add(-day), now.Add(80*day)), inter},
			key: "other", caFile: root, want: ReasonHostnameMismatch},
		{name: "self-signed leaf", chain: []string{leaf("self", "", "leaf_ext", now.Add(-day), now.Add(80*day))},
			key: "self", caFile: root, want: ReasonVerifyFailed},
		{name: "untrusted root not sent", chain: []string{valid("foreign", "otherinter"), otherInter},
			key: "foreign", caFile: root, want: ReasonVerifyFailed},
		{name: "untrusted root sent", chain: []string{valid("foreign2", "otherinter"), otherInter, otherRoot},
			key: "foreign2", caFile: root, want: ReasonVerifyFailed},
		{name: "leaf expired before its root was reissued",
			chain: []string{leaf("of-oldroot", "oldroot", "leaf_ext", now.Add(-90*day), now.Add(-2*day))},
			key:   "of-oldroot", caFile: reissuedRoot, want: ReasonCertificateExpired, check: expiredLeaf},
		{name: "leaf expired before its intermediate was reissued",
			chain: []string{leaf("of-oldinter", "oldinter", "leaf_ext", now.Add(-90*day), now.Add(-2*day)), reissuedInter},
			key:   "of-oldinter", caFile: root, want: ReasonCertificateExpired, check: expiredLeaf},
		{name: "ca_file holds a SHA-1 signed intermediate", chain: []string{valid("of-sha1", "sha1inter")},
			key: "of-sha1", caFile: sha1Inter, partial: true, check: topIsWeakIntermediate},
	}
	for _, tc := range cells {
		t.Run(tc.name, func(t *testing.T) {
			addr := p.serve(p.bundle(tc.key+"-chain.pem", tc.chain...), tc.key, nil)
			code := osslVerdict(t, p, addr, tc.caFile, tc.partial)
			theirs, known := osslVerifyReasons[code]
			if !known {
				t.Fatalf("OpenSSL's verify code %d is not in the mapping", code)
			}
			r := probeOnce(t, endpoint(addr, config.TLSConfig{CAFile: tc.caFile, ServerName: "localhost"}))
			if r.Reason != theirs || r.Reason != tc.want {
				t.Fatalf("reason %q (%s), OpenSSL code %d = %q, want %q", r.Reason, r.Detail, code, theirs, tc.want)
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
}

func probeOnce(t *testing.T, ep config.Endpoint) *TLSResult {
	t.Helper()
	target, err := NewTarget(ep)
	if err != nil {
		t.Fatal(err)
	}
	return target.Probe(context.Background())
}

// expiredLeaf: the detail names the leaf, not the CA, and the CA's
// certificate is still reported, as an anchor of the chain.
func expiredLeaf(t *testing.T, r *TLSResult) {
	t.Helper()
	if !strings.Contains(r.Detail, `"localhost" expired`) {
		t.Errorf("detail %q does not name the leaf", r.Detail)
	}
	if len(r.Certificates) < 2 {
		t.Errorf("only %d certificates reported; the issuer is missing", len(r.Certificates))
	}
}

// topIsWeakIntermediate: a chain that ends at an intermediate from ca_file
// has no root, and the intermediate's SHA-1 signature is a finding.
func topIsWeakIntermediate(t *testing.T, r *TLSResult) {
	t.Helper()
	top := r.Certificates[len(r.Certificates)-1]
	if top.Role != RoleIntermediate || top.SubjectCN != "SHA-1 Intermediate" {
		t.Fatalf("top of chain %q has role %q, want intermediate", top.SubjectCN, top.Role)
	}
	if !slices.Contains(top.Findings, FindingWeakSignature) {
		t.Errorf("SHA-1 intermediate findings %v lack %s", top.Findings, FindingWeakSignature)
	}
}
