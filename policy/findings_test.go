package policy

import (
	"slices"
	"testing"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

// CertFindings judges what the probe or file reader found under the
// policy: the validity limit and whether self-signed leaves are allowed.
func TestCertFindings(t *testing.T) {
	nb := time.Now().Add(-time.Hour).Truncate(time.Second)
	leaf := func(notAfter time.Time, found ...probe.Finding) probe.CertInfo {
		return probe.CertInfo{Role: probe.RoleLeaf, NotBefore: nb, NotAfter: notAfter, Findings: found}
	}
	month := nb.Add(30 * 24 * time.Hour)
	for _, tc := range []struct {
		name string
		cert probe.CertInfo
		pol  config.Policy
		want []probe.Finding
	}{
		{"clean leaf", leaf(month), config.Policy{}, nil},
		{"one second over the CA/B Forum limit of its issue date", leaf(nb.Add(MaxValidity(nb))), config.Policy{},
			[]probe.Finding{probe.FindingValidityTooLong}},
		{"exactly the CA/B Forum limit", leaf(nb.Add(MaxValidity(nb) - time.Second)), config.Policy{}, nil},
		{"policy.max_validity overrides the CA/B Forum limit", leaf(month), config.Policy{MaxValidity: config.Duration(7 * 24 * time.Hour)},
			[]probe.Finding{probe.FindingValidityTooLong}},
		{"a CA certificate is not held to a leaf's validity",
			probe.CertInfo{Role: probe.RoleRoot, NotBefore: nb, NotAfter: nb.AddDate(20, 0, 0)}, config.Policy{}, nil},
		{"SELF_SIGNED kept", leaf(month, probe.FindingSelfSigned), config.Policy{}, []probe.Finding{probe.FindingSelfSigned}},
		{"policy.allow_self_signed drops SELF_SIGNED", leaf(month, probe.FindingSelfSigned),
			config.Policy{AllowSelfSignedLeaves: true}, nil},
		{"in documentation order", leaf(nb.AddDate(10, 0, 0), probe.FindingMustStapleMissing, probe.FindingWeakKey), config.Policy{},
			[]probe.Finding{probe.FindingWeakKey, probe.FindingValidityTooLong, probe.FindingMustStapleMissing}},
	} {
		if got := CertFindings(&tc.cert, tc.pol); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestMaxValidity(t *testing.T) {
	day := 24 * time.Hour
	cases := []struct {
		notBefore time.Time
		want      time.Duration
	}{
		{date(2014, 6, 1), date(2019, 6, 1).Sub(date(2014, 6, 1))}, // 60 months
		{date(2015, 4, 1), date(2018, 7, 1).Sub(date(2015, 4, 1))}, // 39 months
		{date(2018, 2, 28), date(2021, 5, 28).Sub(date(2018, 2, 28))},
		{date(2018, 3, 1), 825 * day},
		{date(2020, 8, 31), 825 * day},
		{date(2020, 9, 1), 398 * day},
		{date(2026, 3, 15).Add(-time.Second), 398 * day},
		{date(2026, 3, 15), 200 * day},
		{date(2027, 3, 14), 200 * day},
		{date(2027, 3, 15), 100 * day},
		{date(2029, 3, 14), 100 * day},
		{date(2029, 3, 15), 47 * day},
		{date(2040, 1, 1), 47 * day},
		{time.Date(2026, 3, 15, 0, 30, 0, 0, time.FixedZone("CET", 3600)), 398 * day}, // still 14 March in UTC
	}
	for _, tc := range cases {
		if got := MaxValidity(tc.notBefore); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.notBefore, got, tc.want)
		}
	}
}

func TestValidityIsInclusive(t *testing.T) {
	nb := date(2025, 1, 1)
	for _, tc := range []struct {
		notAfter time.Time
		limit    time.Duration
		tooLong  bool
	}{
		{nb.Add(398*24*time.Hour - time.Second), 0, false},
		{nb.Add(398 * 24 * time.Hour), 0, true},
		{nb.Add(90 * 24 * time.Hour), 30 * 24 * time.Hour, true},
		{nb.AddDate(10, 0, 0), 11 * 365 * 24 * time.Hour, false},
	} {
		if got := ValidityTooLong(nb, tc.notAfter, tc.limit); got != tc.tooLong {
			t.Errorf("until %s, limit %v: too long %v, want %v", tc.notAfter, tc.limit, got, tc.tooLong)
		}
	}
}
