package policy

import (
	"crypto/tls"
	"encoding/hex"
	"slices"
	"testing"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/certfile"
	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

func TestPolicyViolations(t *testing.T) {
	nb := time.Now().Add(-time.Hour)
	leaf := probe.CertInfo{Role: probe.RoleLeaf, SubjectCN: "mcp", NotBefore: nb, NotAfter: nb.Add(90 * 24 * time.Hour)}
	selfSignedLeaf := leaf
	selfSignedLeaf.Findings = []probe.Finding{probe.FindingSelfSigned}
	root := probe.CertInfo{Role: probe.RoleRoot, NotBefore: nb, NotAfter: nb.AddDate(20, 0, 0)}
	modern := &probe.PostureResult{
		Versions: []probe.VersionResult{{Version: tls.VersionTLS11, Accepted: false}, {Version: tls.VersionTLS12, Accepted: true}, {Version: tls.VersionTLS13, Accepted: true}},
		Suites:   []probe.SuiteResult{{Version: tls.VersionTLS12, Suite: tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, Secure: true}},
		HSTS:     &probe.HSTSResult{Present: true, Valid: true, MaxAge: 31536000},
	}
	legacy := &probe.PostureResult{
		Versions: []probe.VersionResult{{Version: tls.VersionTLS10, Accepted: true}, {Version: tls.VersionTLS12, Accepted: true}},
		Suites:   []probe.SuiteResult{{Version: tls.VersionTLS10, Suite: tls.TLS_RSA_WITH_AES_128_CBC_SHA, Secure: false}},
		// ClientCertRequired unknown, HSTS unknown: neither may breach a rule.
	}
	open := &probe.PostureResult{ClientCertRequired: new(bool), HSTS: &probe.HSTSResult{}}
	url := config.Endpoint{URL: "https://mcp.example/mcp"}
	defaults := config.Policy{MinVersion: config.TLSVersion(tls.VersionTLS12)}
	strict := defaults
	strict.RequireClientCert, strict.MinHSTSMaxAge, strict.MaxValidity = true, config.Duration(24*time.Hour), config.Duration(30*24*time.Hour)
	lenient := config.Policy{MinVersion: config.TLSVersion(tls.VersionTLS10), AllowInsecureCiphers: true, AllowSelfSignedLeaves: true}

	cases := []struct {
		name  string
		pol   config.Policy
		ep    config.Endpoint
		probe *probe.TLSResult
		scan  *probe.PostureResult
		want  []Rule
	}{
		{"modern endpoint, default policy", defaults, url, &probe.TLSResult{Certificates: []probe.CertInfo{leaf, root}}, modern, nil},
		{"nothing known yet", strict, url, nil, nil, nil},
		{"legacy endpoint, default policy", defaults, url, nil, legacy, []Rule{RuleMinVersion, RuleAllowInsecureCiphers}},
		{"legacy endpoint, lenient policy", lenient, url, nil, legacy, nil},
		{"unknown checks breach nothing under a strict policy", strict, url, nil, legacy, []Rule{RuleMinVersion, RuleAllowInsecureCiphers}},
		{"no mTLS, no HSTS, long leaf under a strict policy", strict, url, &probe.TLSResult{Certificates: []probe.CertInfo{leaf, root}}, open,
			[]Rule{RuleRequireClientCert, RuleMinHSTSMaxAge, RuleMaxValidity}},
		{"HSTS rule skips address endpoints", strict, config.Endpoint{Address: "mcp:443"}, nil, open, []Rule{RuleRequireClientCert}},
		{"self-signed leaf", defaults, url, &probe.TLSResult{Certificates: []probe.CertInfo{selfSignedLeaf}}, nil, []Rule{RuleAllowSelfSigned}},
		{"self-signed leaf allowed", lenient, url, &probe.TLSResult{Certificates: []probe.CertInfo{selfSignedLeaf}}, nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []Rule
			for _, v := range EndpointViolations(tc.pol, tc.ep, tc.probe, tc.scan) {
				got = append(got, v.Rule)
				if v.Detail == "" {
					t.Errorf("%s has no detail", v.Rule)
				}
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(tc.want))
			if !slices.Equal(got, want) {
				t.Errorf("rules %v, want %v", got, want)
			}
		})
	}
}

func TestRulesHaveRemedies(t *testing.T) {
	for _, r := range Rules {
		if r.Remedy() == "" || r.Breach() == "" {
			t.Errorf("rule %s lacks its documentation", r)
		}
	}
	if len(ruleDocs) != len(Rules) {
		t.Error("a rule is documented but not listed")
	}
}

func TestFileViolationsOnePerRule(t *testing.T) {
	nb := time.Now().Add(-time.Hour)
	long := probe.CertInfo{Role: probe.RoleLeaf, NotBefore: nb, NotAfter: nb.AddDate(5, 0, 0), Findings: []probe.Finding{probe.FindingSelfSigned}}
	res := &certfile.FileResult{Files: []certfile.FileState{{Path: "/a.pem", Certificates: []probe.CertInfo{long, long}}, {Path: "/b.pem", Certificates: []probe.CertInfo{long}}}}
	pol := config.Policy{MaxValidity: config.Duration(365 * 24 * time.Hour)}
	vs := FileViolations(pol, res)
	if len(vs) != 2 || vs[0].Rule != RuleMaxValidity || vs[1].Rule != RuleAllowSelfSigned {
		t.Fatalf("violations %+v, want max_validity and allow_self_signed once each", vs)
	}
}

func TestPinMatch(t *testing.T) {
	ca := testpki.NewCA("Pin CA")
	leaf := probe.CertInfoOf(ca.Leaf("pinned").Cert, probe.RoleLeaf)
	root := probe.CertInfoOf(ca.Cert, probe.RoleRoot)
	other := probe.CertInfoOf(testpki.NewCA("Other").Cert, probe.RoleRoot)
	hexPin := func(ci probe.CertInfo) string {
		spki, _ := config.DecodePin(ci.SPKISHA256)
		return hex.EncodeToString(spki)
	}
	cases := []struct {
		name  string
		pins  []string
		chain []probe.CertInfo
		want  bool
	}{
		{"leaf key, base64", []string{leaf.SPKISHA256}, []probe.CertInfo{leaf, root}, true},
		{"CA key, hex", []string{other.SPKISHA256, hexPin(root)}, []probe.CertInfo{leaf, root}, true},
		{"no key matches", []string{other.SPKISHA256}, []probe.CertInfo{leaf, root}, false},
	}
	for _, tc := range cases {
		if got := PinMatch(tc.pins, tc.chain); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
