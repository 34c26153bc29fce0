package config

import (
	"net/url"
	"strings"
	"time"
)

// Limits bound what one file, glob or TLS peer can add to the exporter's
// memory and to the scrape. Reaching one is reported on the target, never
// silent; docs/security.md lists them.
type Limits struct {
	// CertificatesPerFile: certificates read from one file; the rest are
	// left out.
	CertificatesPerFile int `yaml:"certificates_per_file"`
	// CertificatesPerChain: certificates kept of the chain a TLS peer sends.
	CertificatesPerChain int `yaml:"certificates_per_chain"`
	// SANsPerCertificate: SANs written into the sans label of one
	// certificate.
	SANsPerCertificate int `yaml:"sans_per_certificate"`
	// LabelLength: bytes of one label value; longer values are cut.
	LabelLength int `yaml:"label_length"`
	// GlobMatches: files one pattern may match.
	GlobMatches int `yaml:"glob_matches"`
	// GlobEntries: directory entries one pattern's walk may list.
	GlobEntries int `yaml:"glob_entries"`
}

// DefaultLimits are the limits of a config that sets none. They hold a
// system CA bundle (about 150 certificates), a multi-domain certificate and
// /etc/ssl/certs with room to spare.
var DefaultLimits = Limits{
	CertificatesPerFile:  250,
	CertificatesPerChain: 20,
	SANsPerCertificate:   100,
	LabelLength:          4096,
	GlobMatches:          1000,
	GlobEntries:          100000,
}

// limitBound is the valid range of one limit.
type limitBound struct {
	key      string
	value    *int
	def, max int
}

func (l *Limits) bounds() []limitBound {
	d := DefaultLimits
	return []limitBound{
		{"certificates_per_file", &l.CertificatesPerFile, d.CertificatesPerFile, 100000},
		{"certificates_per_chain", &l.CertificatesPerChain, d.CertificatesPerChain, 1000},
		{"sans_per_certificate", &l.SANsPerCertificate, d.SANsPerCertificate, 100000},
		{"label_length", &l.LabelLength, d.LabelLength, 1 << 20},
		{"glob_matches", &l.GlobMatches, d.GlobMatches, 1000000},
		{"glob_entries", &l.GlobEntries, d.GlobEntries, 10000000},
	}
}

// Upper bounds of the numbers a config sets: beyond them a value is a
// mistake, and arithmetic on it (jitter, timers, channel sizes) could
// overflow.
const (
	MaxConcurrency = 10000
	MaxInterval    = 365 * 24 * time.Hour
	MaxTimeout     = time.Hour
	// MaxPolicyDuration bounds policy durations: no certificate or HSTS
	// max-age is meant to last a century.
	MaxPolicyDuration = 100 * 365 * 24 * time.Hour
)

func (c *Config) applyLimitDefaults(unset func(p ...any) bool) {
	for _, b := range c.Limits.bounds() {
		if *b.value == 0 && unset("limits", b.key) {
			*b.value = b.def
		}
	}
	for i := range c.Endpoints {
		c.Endpoints[i].Limits = c.Limits
	}
	for i := range c.Files {
		c.Files[i].Limits = c.Limits
	}
}

func (l *Limits) validate(ps *problems) {
	for _, b := range l.bounds() {
		if *b.value < 1 || *b.value > b.max {
			ps.add(path{"limits", b.key}, "must be from 1 to %d (default %d), got %d", b.max, b.def, *b.value)
		}
	}
}

// inRange checks a duration against (0, max].
func (ps *problems) inRange(at path, d Duration, max time.Duration) {
	switch {
	case d <= 0:
		ps.add(at, "must be greater than zero")
	case d.D() > max:
		ps.add(at, "must be at most %s, got %s", Duration(max).String(), d.String())
	}
}

// notAbove checks a duration that may be zero (unset) against max.
func (ps *problems) notAbove(at path, d Duration, max time.Duration) {
	switch {
	case d < 0:
		ps.add(at, "must not be negative")
	case d.D() > max:
		ps.add(at, "must be at most %s, got %s", Duration(max).String(), d.String())
	}
}

// String writes the duration as the config does.
func (d Duration) String() string { v, _ := d.MarshalYAML(); return v.(string) }

// credentialParams are query parameter names that carry a secret: a URL is
// shown on /status and in logs, so they are refused like user:pass@.
var credentialParams = []string{"token", "key", "password", "passwd", "pwd", "secret", "auth", "credential",
	"signature", "sig", "session", "jwt", "bearer", "apikey", "api-key", "api_key", "access_token"}

// credentialParam returns the first query parameter of u whose name looks
// like a credential, matched as a whole word of the name (access_token,
// X-Api-Key, client_secret), or "".
func credentialParam(u *url.URL) string {
	for name := range u.Query() {
		words := strings.FieldsFunc(strings.ToLower(name), func(r rune) bool { return r == '_' || r == '-' || r == '.' })
		for _, w := range append(words, strings.ToLower(name)) {
			for _, c := range credentialParams {
				if w == c {
					return name
				}
			}
		}
	}
	return ""
}
