package config

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestModulesParse(t *testing.T) {
	cfg, err := Parse([]byte(`
timeout: 7s
probe_concurrency: 4
modules:
  mcp_internal:
    prober: mcp
    timeout: 3s
    posture: true
    tls_config: {ca_file: ca.pem}
    mcp: {transport: streamable}
    allowed_targets:
      hosts: ["*.mcp.internal", "MCP.example.com"]
      cidrs: [10.0.0.0/8]
      ports: [443, 8443]
  tls_any_port:
    allowed_targets: {cidrs: [127.0.0.0/8]}
target_files:
  - files: [sd/*.yml, sd/*.json]
    module: mcp_internal
`), "testdata/mcp.yml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ProbeConcurrency != 4 {
		t.Errorf("probe_concurrency = %d, want 4", cfg.ProbeConcurrency)
	}
	m := cfg.Modules["mcp_internal"]
	if m.Prober != ProberMCP || m.Timeout.D() != 3*time.Second || !m.Posture || m.TLSConfig.CAFile != "testdata/ca.pem" {
		t.Errorf("mcp_internal = %+v", m)
	}
	if d := cfg.Modules["tls_any_port"]; d.Prober != ProberTLS || d.Timeout.D() != 7*time.Second || d.Posture {
		t.Errorf("defaults: tls_any_port = %+v, want prober tls, the global timeout, posture off", d)
	}
	want := []TargetFiles{{Files: []string{"testdata/sd/*.yml", "testdata/sd/*.json"}, Module: "mcp_internal",
		Interval: Duration(DefaultInterval), RefreshInterval: Duration(DefaultTargetFilesRefresh)}}
	if !reflect.DeepEqual(cfg.TargetFiles, want) {
		t.Errorf("target_files = %+v, want %+v", cfg.TargetFiles, want)
	}
}

func TestModulesBad(t *testing.T) {
	tests := map[string]string{
		"modules:\n  m:\n    prober: http\n":                                 `3: modules.m.prober: unknown prober "http" (use tls for host:port targets, mcp for https:// URLs)`,
		"modules:\n  m:\n    allowed_targets: {hosts: [\"a:443\"]}\n":        `3: modules.m.allowed_targets.hosts[0]: "a:443" must be a host name pattern, without scheme or port (ports go under ports)`,
		"modules:\n  m:\n    allowed_targets: {hosts: [\"[a\"]}\n":           `3: modules.m.allowed_targets.hosts[0]: "[a" is not a valid pattern`,
		"modules:\n  m:\n    allowed_targets: {cidrs: [10.0.0.0]}\n":         `3: modules.m.allowed_targets.cidrs[0]: "10.0.0.0" is not a CIDR such as 10.0.0.0/8 or fd00::/8`,
		"modules:\n  m:\n    allowed_targets: {ports: [0]}\n":                "3: modules.m.allowed_targets.ports[0]: 0 is not a port from 1 to 65535",
		"modules:\n  m:\n    allowed_targets: {host: [a]}\n":                 "3: modules.m.allowed_targets.host: unknown field; check its spelling and indentation",
		"modules:\n  m:\n    mcp: {transport: sse}\n":                        "3: modules.m.mcp.transport: MCP needs a url endpoint; address endpoints only do TLS",
		"modules:\n  m:\n    timeout: 0s\n":                                  "3: modules.m.timeout: must be greater than zero",
		"probe_concurrency: 0\n":                                             "1: probe_concurrency: must be at least 1",
		"target_files:\n  - files: [a.yml]\n    module: nope\n":              `3: target_files[0].module: unknown module "nope" (define it under modules:)`,
		"modules: {m: {}}\ntarget_files:\n  - module: m\n":                   "3: target_files[0].files: needs at least one path or glob",
		"modules: {m: {}}\ntarget_files:\n  - {module: m, files: [\"[\"]}\n": `3: target_files[0].files[0]: "[" is not a valid glob`,
	}
	for yml, want := range tests {
		t.Run(want, func(t *testing.T) {
			_, err := Parse([]byte(yml), "mcp.yml")
			var errs Errors
			if !errors.As(err, &errs) || len(errs) != 1 {
				t.Fatalf("error = %v, want exactly one problem", err)
			}
			if got := strings.TrimPrefix(err.Error(), "mcp.yml:"); got != want {
				t.Errorf("error\n got %s\nwant %s", got, want)
			}
			checkReadable(t, errs)
		})
	}
}

func TestAllowedTargets(t *testing.T) {
	guard := AllowedTargets{Hosts: []string{"*.mcp.internal", "api.example.com", "**.deep.example"},
		CIDRs: []string{"10.1.0.0/16", "fd00::/8"}, Ports: []int{443, 8443}}
	var ps problems
	guard.validate(path{}, &ps)
	if len(ps) > 0 {
		t.Fatal(ps)
	}
	tests := []struct {
		host string
		port int
		ok   bool
	}{
		{"a.mcp.internal", 443, true},
		{"A.MCP.Internal.", 8443, true},  // names are case-insensitive, a trailing dot is the same name
		{"a.b.mcp.internal", 443, false}, // * is one label
		{"mcp.internal", 443, false},
		{"x.y.z.deep.example", 443, true}, // ** is any number of labels
		{"api.example.com", 443, true},
		{"api.example.com", 22, false},
		{"api.example.com.evil.test", 443, false},
		{"10.1.2.3", 443, true},
		{"10.2.0.1", 443, false},
		{"fd00::1", 443, true},
		{"::ffff:10.1.2.3", 443, true},
		{"", 443, false},
	}
	for _, tt := range tests {
		err := guard.Allow(tt.host, tt.port)
		if (err == nil) != tt.ok {
			t.Errorf("Allow(%q, %d) = %v, want allowed %v", tt.host, tt.port, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrTargetNotAllowed) {
			t.Errorf("Allow(%q, %d) = %v, not ErrTargetNotAllowed", tt.host, tt.port, err)
		}
	}
	if guard.AllowAddr(netip.MustParseAddr("192.168.0.1")) || !guard.AllowAddr(netip.MustParseAddr("10.1.0.9")) {
		t.Error("AllowAddr does not follow cidrs")
	}
	// Even ** allows only names: numbers that inet_aton-style resolvers read
	// as 127.0.0.1 are not names.
	everyName := AllowedTargets{Hosts: []string{"**"}}
	for _, h := range []string{"127.1", "2130706433", "0x7f000001", "0177.0.0.1", "a..example", "a b.example", "a%25eth0.example"} {
		if err := everyName.Allow(h, 443); err == nil {
			t.Errorf("hosts [**] allows %q", h)
		}
	}
	if err := everyName.Allow("any.example", 443); err != nil {
		t.Errorf("hosts [**] refuses any.example: %v", err)
	}
	var none AllowedTargets
	for _, h := range []string{"localhost", "127.0.0.1", "::1", "example.com"} {
		if none.Allow(h, 443) == nil {
			t.Errorf("the zero guard allows %s", h)
		}
	}
}

func TestModuleEndpoint(t *testing.T) {
	m := Module{Prober: ProberMCP, Timeout: Duration(time.Second), AllowedTargets: AllowedTargets{Hosts: []string{"mcp.test"}}}
	tls := Module{Prober: ProberTLS, AllowedTargets: AllowedTargets{Hosts: []string{"mcp.test"}}}
	tests := []struct {
		m       Module
		target  string
		wantErr string
	}{
		{m, "https://mcp.test:8443/mcp", ""},
		{m, "mcp.test:443", "must be an https:// URL"},
		{m, "https://user:pw@mcp.test/mcp", "must not carry credentials"},
		{m, "https://other.test/mcp", "matches no pattern"},
		{tls, "mcp.test:443", ""},
		{tls, "https://mcp.test/mcp", "must be host:port without a scheme"},
		{tls, "127.0.0.1:443", "is not inside allowed_targets.cidrs"},
	}
	for _, tt := range tests {
		ep, err := tt.m.Endpoint(tt.target, time.Minute)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("Endpoint(%q) = %v", tt.target, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("Endpoint(%q) = %v, want an error containing %q", tt.target, err, tt.wantErr)
		case err == nil && (ep.Name != tt.target || ep.Interval.D() != time.Minute):
			t.Errorf("Endpoint(%q) = %+v, want name %q", tt.target, ep, tt.target)
		}
	}
}
