package config

import (
	"crypto/tls"
	"fmt"
	"time"

	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration written as Prometheus writes them: 30s, 5m, 1h, 90d.
type Duration time.Duration

// UnmarshalYAML parses a Prometheus duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := model.ParseDuration(n.Value)
	if err != nil || n.Kind != yaml.ScalarNode {
		return typeError(n, "cannot parse %q as a duration (write it like 30s, 5m, 1h or 90d)", n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration back in the same form.
func (d Duration) MarshalYAML() (any, error) { return model.Duration(d).String(), nil }

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// TLSVersion is a TLS protocol version written as TLS10, TLS11, TLS12 or TLS13.
type TLSVersion uint16

var tlsVersions = map[string]uint16{
	"TLS10": tls.VersionTLS10,
	"TLS11": tls.VersionTLS11,
	"TLS12": tls.VersionTLS12,
	"TLS13": tls.VersionTLS13,
}

// UnmarshalYAML parses TLS10 … TLS13.
func (v *TLSVersion) UnmarshalYAML(n *yaml.Node) error {
	x, ok := tlsVersions[n.Value]
	if !ok || n.Kind != yaml.ScalarNode {
		return typeError(n, "unknown TLS version %q (use TLS10, TLS11, TLS12 or TLS13)", n.Value)
	}
	*v = TLSVersion(x)
	return nil
}

// MarshalYAML writes the version back as TLS1x.
func (v TLSVersion) MarshalYAML() (any, error) {
	for name, x := range tlsVersions {
		if uint16(v) == x {
			return name, nil
		}
	}
	return nil, nil
}

// typeError is collected by yaml.v3 with the others, so one pass reports them all.
func typeError(n *yaml.Node, format string, args ...any) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %s", n.Line, fmt.Sprintf(format, args...))}}
}
