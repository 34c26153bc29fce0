package config

import (
	"crypto/tls"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration written as Prometheus writes them: 30s, 5m, 1h, 90d.
type Duration time.Duration

// UnmarshalYAML parses a Prometheus duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return typeError(n, "must be a duration like 30s, 5m, 1h or 90d, not %s", kindOf(n))
	}
	if strings.HasPrefix(n.Value, "-") {
		return typeError(n, "cannot be negative (got %s)", quote(n.Value))
	}
	v, err := model.ParseDuration(n.Value)
	if err != nil {
		return typeError(n, "cannot parse %s as a duration (write it like 30s, 5m, 1h or 90d)", quote(n.Value))
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
		return typeError(n, "must be TLS10, TLS11, TLS12 or TLS13, not %s", kindOf(n))
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
