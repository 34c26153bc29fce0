package policy

import (
	"slices"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

// CertFindings is every finding of a cached certificate under the policy:
// its own findings, less SELF_SIGNED when policy.allow_self_signed is set,
// plus VALIDITY_TOO_LONG for a leaf valid longer than policy.max_validity
// or, without it, than the CA/Browser Forum limit on its issue date.
func CertFindings(ci *probe.CertInfo, pol config.Policy) []probe.Finding {
	out := make([]probe.Finding, 0, len(ci.Findings)+1)
	for _, f := range ci.Findings {
		if f != probe.FindingSelfSigned || !pol.AllowSelfSignedLeaves {
			out = append(out, f)
		}
	}
	if ci.Role == probe.RoleLeaf && ValidityTooLong(ci.NotBefore, ci.NotAfter, pol.MaxValidity.D()) {
		out = append(out, probe.FindingValidityTooLong)
	}
	slices.SortFunc(out, func(a, b probe.Finding) int { return slices.Index(probe.Findings, a) - slices.Index(probe.Findings, b) })
	return out
}

// validityLimits are the CA/Browser Forum Baseline Requirements' maximum
// validity of a server certificate by issue date (BR 6.3.2; ballots 193,
// SC31 and SC-081v3), newest first.
var validityLimits = []struct {
	from         time.Time
	months, days int
}{
	{date(2029, 3, 15), 0, 47},
	{date(2027, 3, 15), 0, 100},
	{date(2026, 3, 15), 0, 200},
	{date(2020, 9, 1), 0, 398},
	{date(2018, 3, 1), 0, 825},
	{date(2015, 4, 1), 39, 0},
	{time.Time{}, 60, 0}, // BR 1.0
}

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// MaxValidity is the longest validity the CA/Browser Forum allowed for a
// leaf issued at notBefore.
func MaxValidity(notBefore time.Time) time.Duration {
	nb := notBefore.UTC() // days of 24 hours, whatever the zone's DST
	for _, l := range validityLimits {
		if !nb.Before(l.from) {
			return nb.AddDate(0, l.months, l.days).Sub(nb)
		}
	}
	panic("unreachable: the last limit starts at the zero time")
}

// ValidityTooLong measures validity as the BRs do, NotBefore through NotAfter
// inclusive, hence the extra second. limit 0 means the CA/B Forum's.
func ValidityTooLong(notBefore, notAfter time.Time, limit time.Duration) bool {
	if limit <= 0 {
		limit = MaxValidity(notBefore)
	}
	return notAfter.Sub(notBefore)+time.Second > limit
}
