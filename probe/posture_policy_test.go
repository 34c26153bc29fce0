package probe

import (
	"crypto/tls"
	"encoding/hex"
	"slices"
	"testing"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
)

func TestPolicyViolations(t *testing.T) {
	nb := time.Now().Add(-time.Hour)
	leaf := CertInfo{Role: RoleLeaf, SubjectCN: "mcp", NotBefore: nb, NotAfter: nb.Add(90 * 24 * time.Hour)}
	selfSignedLeaf := leaf
	selfSignedLeaf.Findings = []Finding{FindingSelfSigned}
	root := CertInfo{Role: RoleRoot, NotBefore: nb, NotAfter: nb.AddDate(20, 0, 0)}
	modern := &PostureResult{
		Versions: []VersionResult{{tls.VersionTLS11, false}, {tls.VersionTLS12, true}, {tls.VersionTLS13, true}},
		Suites:   []SuiteResult{{tls.VersionTLS12, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, true}},
		HSTS:     &HSTSResult{Present: true, Valid: true, MaxAge: 31536000},
	}
	legacy := &PostureResult{
		Versions: []VersionResult{{tls.VersionTLS10, true}, {tls.VersionTLS12, true}},
		Suites:   []SuiteResult{{tls.VersionTLS10, tls.TLS_RSA_WITH_AES_128_CBC_SHA, false}},
		// ClientCertRequired unknown, HSTS unknown: neither may breach a rule.
	}
	open := &PostureResult{ClientCertRequired: ptr(false), HSTS: &HSTSResult{}}
	url := config.Endpoint{URL: "https://mcp.example/mcp"}
	defaults := config.Policy{MinVersion: config.TLSVersion(tls.VersionTLS12)}
	strict := defaults
	strict.RequireClientCert, strict.MinHSTSMaxAge, strict.MaxValidity = true, config.Duration(24*time.Hour), config.Duration(30*24*time.Hour)
	lenient := config.Policy{MinVersion: config.TLSVersion(tls.VersionTLS10), AllowInsecureCiphers: true, AllowSelfSignedLeaves: true}

	cases := []struct {
		name  string
		pol   config.Policy
		ep    config.Endpoint
		probe *TLSResult
		scan  *PostureResult
		want  []Rule
	}{
		{"modern endpoint, default policy", defaults, url, &TLSResult{Certificates: []CertInfo{leaf, root}}, modern, nil},
		{"nothing known yet", strict, url, nil, nil, nil},
		{"legacy endpoint, default policy", defaults, url, nil, legacy, []Rule{RuleMinVersion, RuleAllowInsecureCiphers}},
		{"legacy endpoint, lenient policy", lenient, url, nil, legacy, nil},
		{"unknown checks breach nothing under a strict policy", strict, url, nil, legacy, []Rule{RuleMinVersion, RuleAllowInsecureCiphers}},
		{"no mTLS, no HSTS, long leaf under a strict policy", strict, url, &TLSResult{Certificates: []CertInfo{leaf, root}}, open,
			[]Rule{RuleRequireClientCert, RuleMinHSTSMaxAge, RuleMaxValidity}},
		{"HSTS rule skips address endpoints", strict, config.Endpoint{Address: "mcp:443"}, nil, open, []Rule{RuleRequireClientCert}},
		{"self-signed leaf", defaults, url, &TLSResult{Certificates: []CertInfo{selfSignedLeaf}}, nil, []Rule{RuleAllowSelfSigned}},
		{"self-signed leaf allowed", lenient, url, &TLSResult{Certificates: []CertInfo{selfSignedLeaf}}, nil, nil},
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

func TestFileViolationsOnePerRule(t *testing.T) {
	nb := time.Now().Add(-time.Hour)
	long := CertInfo{Role: RoleLeaf, NotBefore: nb, NotAfter: nb.AddDate(5, 0, 0), Findings: []Finding{FindingSelfSigned}}
	res := &FileResult{Files: []FileState{{Path: "/a.pem", Certificates: []CertInfo{long, long}}, {Path: "/b.pem", Certificates: []CertInfo{long}}}}
	pol := config.Policy{MaxValidity: config.Duration(365 * 24 * time.Hour)}
	vs := FileViolations(pol, res)
	if len(vs) != 2 || vs[0].Rule != RuleMaxValidity || vs[1].Rule != RuleAllowSelfSigned {
		t.Fatalf("violations %+v, want max_validity and allow_self_signed once each", vs)
	}
}

func TestPinMatch(t *testing.T) {
	ca := testpki.NewCA("Pin CA")
	leaf := CertInfoOf(ca.Leaf("pinned").Cert, RoleLeaf)
	root := CertInfoOf(ca.Cert, RoleRoot)
	other := CertInfoOf(testpki.NewCA("Other").Cert, RoleRoot)
	hexPin := func(ci CertInfo) string {
		spki, _ := config.DecodePin(ci.SPKISHA256)
		return hex.EncodeToString(spki)
	}
	cases := []struct {
		name  string
		pins  []string
		chain []CertInfo
		want  bool
	}{
		{"leaf key, base64", []string{leaf.SPKISHA256}, []CertInfo{leaf, root}, true},
		{"CA key, hex", []string{other.SPKISHA256, hexPin(root)}, []CertInfo{leaf, root}, true},
		{"no key matches", []string{other.SPKISHA256}, []CertInfo{leaf, root}, false},
	}
	for _, tc := range cases {
		if got := PinMatch(tc.pins, tc.chain); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
