package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/bmatcuk/doublestar/v4"
)

// Defaults of the discovery keys.
const (
	DefaultProbeConcurrency   = 64
	DefaultTargetFilesRefresh = 30 * time.Second
)

// Probers: what a module's targets look like and what is spoken to them.
const (
	ProberTLS = "tls" // host:port, TLS only
	ProberMCP = "mcp" // https:// URL, TLS then MCP
)

// Module is how /probe and target_files probe a target they name: the
// settings of an endpoint, less its address, plus the targets it may reach.
type Module struct {
	Prober         string         `yaml:"prober"`
	Timeout        Duration       `yaml:"timeout"`
	TLSConfig      TLSConfig      `yaml:"tls_config"`
	MCP            MCPConfig      `yaml:"mcp"`
	Posture        bool           `yaml:"posture"`
	AllowedTargets AllowedTargets `yaml:"allowed_targets"`

	// Limits are the config's limits, copied here for the probe: a target
	// asked for on demand is bounded like a configured one.
	Limits Limits `yaml:"-"`
}

// AllowedTargets is a module's SSRF guard. A target is allowed when its
// host matches one of Hosts (names only) or is an IP literal inside one of
// CIDRs, and its port is one of Ports (any port when Ports is empty). The
// zero value allows nothing. When CIDRs is set, a name allowed by Hosts must
// also resolve to addresses inside CIDRs: the others are never dialled.
type AllowedTargets struct {
	Hosts []string `yaml:"hosts"`
	CIDRs []string `yaml:"cidrs"`
	Ports []int    `yaml:"ports"`

	prefixes []netip.Prefix
}

// TargetFiles turns the targets of file_sd files into endpoints of a module.
type TargetFiles struct {
	Files           []string `yaml:"files"`
	Module          string   `yaml:"module"`
	Interval        Duration `yaml:"interval"`
	RefreshInterval Duration `yaml:"refresh_interval"`
}

// ErrTargetNotAllowed is why Allow refuses a target.
var ErrTargetNotAllowed = errors.New("target not allowed")

// Allow checks a target's host and port against the guard without any DNS
// lookup. It says why a target is refused.
func (a *AllowedTargets) Allow(host string, port int) error {
	if len(a.Ports) > 0 && !slices.Contains(a.Ports, port) {
		return fmt.Errorf("%w: port %d is not in allowed_targets.ports %v", ErrTargetNotAllowed, port, a.Ports)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if a.AllowAddr(ip) && len(a.prefixes) > 0 {
			return nil
		}
		return fmt.Errorf("%w: IP address %s is not inside allowed_targets.cidrs %v", ErrTargetNotAllowed, ip, a.CIDRs)
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	if err := checkName(name); err != nil {
		return fmt.Errorf("%w: host %q %v", ErrTargetNotAllowed, host, err)
	}
	for _, p := range a.Hosts {
		if ok, _ := doublestar.Match(labels(strings.ToLower(p)), labels(name)); ok && name != "" {
			return nil
		}
	}
	return fmt.Errorf("%w: host %q matches no pattern of allowed_targets.hosts %v", ErrTargetNotAllowed, host, a.Hosts)
}

// checkName refuses what is not a plain DNS name. Resolvers built on
// inet_aton read 127.1, 2130706433 or 0x7f000001 as IPv4 addresses, which
// would slip an address past cidrs as a "name" that a broad host pattern
// allows; a real name's last label is never a number.
func checkName(name string) error {
	labels := strings.Split(name, ".")
	if len(name) > 253 {
		return errors.New("is longer than a DNS name can be")
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || strings.ContainsFunc(l, func(r rune) bool {
			return !('a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '-' || r == '_')
		}) {
			return errors.New("is not a DNS name (letters, digits, - and _ in dot-separated labels)")
		}
	}
	if _, err := strconv.ParseUint(labels[len(labels)-1], 0, 64); err == nil {
		return errors.New("ends in a number: an IP address in another notation, not a name")
	}
	return nil
}

// AllowAddr reports whether a resolved address may be dialled: inside one
// of CIDRs, or any address when CIDRs is empty (names are then trusted to
// resolve where Hosts meant).
func (a *AllowedTargets) AllowAddr(ip netip.Addr) bool {
	if len(a.prefixes) == 0 {
		return true
	}
	ip = ip.Unmap()
	return slices.ContainsFunc(a.prefixes, func(p netip.Prefix) bool { return p.Contains(ip) })
}

// RestrictsAddrs reports whether resolved addresses are checked at all.
func (a *AllowedTargets) RestrictsAddrs() bool { return len(a.prefixes) > 0 }

// labels writes a DNS name with / between labels, so that a glob's * stays
// within one label and ** spans any number.
func labels(name string) string { return strings.ReplaceAll(name, ".", "/") }

// Endpoint makes the endpoint that probes target with module m. The target
// is an https:// URL for the mcp prober and host:port for tls. The name,
// and so the target label, is the target as given.
func (m *Module) Endpoint(target string, interval time.Duration) (Endpoint, error) {
	ep := Endpoint{Name: target, Interval: Duration(interval), Timeout: m.Timeout, TLSConfig: m.TLSConfig, MCP: m.MCP,
		Posture: &m.Posture, Limits: m.Limits}
	var ps problems
	if m.Prober == ProberMCP {
		ep.URL = target
		validateURL(target, path{"target"}, &ps)
	} else {
		ep.Address = target
		validateAddress(target, path{"target"}, &ps)
	}
	if len(ps) > 0 {
		return Endpoint{}, fmt.Errorf("target %q %s (module prober %s)", target, ps[0].msg, m.Prober)
	}
	host, port, err := net.SplitHostPort(ep.HostPort())
	if err != nil {
		return Endpoint{}, fmt.Errorf("target %q: %w", target, err)
	}
	n, _ := strconv.Atoi(port) // validated above
	if err := m.AllowedTargets.Allow(strings.Trim(host, "[]"), n); err != nil {
		return Endpoint{}, err
	}
	return ep, nil
}

func (c *Config) applyDiscoveryDefaults(unset func(...any) bool) {
	if c.ProbeConcurrency == 0 && unset("probe_concurrency") {
		c.ProbeConcurrency = DefaultProbeConcurrency
	}
	for name, m := range c.Modules {
		if m.Prober == "" {
			m.Prober = ProberTLS
		}
		if m.Timeout == 0 && unset("modules", name, "timeout") {
			m.Timeout = c.Timeout
		}
		m.Limits = c.Limits
		c.Modules[name] = m
	}
	for i := range c.TargetFiles {
		tf := &c.TargetFiles[i]
		if tf.Interval == 0 && unset("target_files", i, "interval") {
			tf.Interval = c.Interval
		}
		if tf.RefreshInterval == 0 && unset("target_files", i, "refresh_interval") {
			tf.RefreshInterval = Duration(DefaultTargetFilesRefresh)
		}
	}
}

func (c *Config) resolveDiscoveryPaths(join func(*string)) {
	for name, m := range c.Modules {
		join(&m.TLSConfig.CAFile)
		join(&m.TLSConfig.CertFile)
		join(&m.TLSConfig.KeyFile)
		join(&m.MCP.BearerTokenFile)
		c.Modules[name] = m
	}
	for i := range c.TargetFiles {
		for j := range c.TargetFiles[i].Files {
			join(&c.TargetFiles[i].Files[j])
		}
	}
}

func (c *Config) validateDiscovery(ps *problems) {
	switch {
	case c.ProbeConcurrency < 1:
		ps.add(path{"probe_concurrency"}, "must be at least 1")
	case c.ProbeConcurrency > MaxConcurrency:
		ps.add(path{"probe_concurrency"}, "must be at most %d, got %d", MaxConcurrency, c.ProbeConcurrency)
	}
	names := make([]string, 0, len(c.Modules))
	for name := range c.Modules {
		names = append(names, name)
	}
	sort.Strings(names) // problems in a stable order
	for _, name := range names {
		m := c.Modules[name]
		m.validate(path{"modules", name}, ps)
		c.Modules[name] = m
	}
	for i, tf := range c.TargetFiles {
		at := path{"target_files", i}
		if len(tf.Files) == 0 {
			ps.add(append(at, "files"), "needs at least one path or glob")
		}
		validateGlobs(tf.Files, append(at, "files"), ps)
		if _, ok := c.Modules[tf.Module]; !ok {
			ps.add(append(at, "module"), "unknown module %q (define it under modules:)", tf.Module)
		}
		ps.inRange(append(at, "interval"), tf.Interval, MaxInterval)
		ps.inRange(append(at, "refresh_interval"), tf.RefreshInterval, MaxInterval)
	}
}

func (m *Module) validate(at path, ps *problems) {
	switch m.Prober {
	case ProberTLS, ProberMCP:
	default:
		ps.add(append(at, "prober"), "unknown prober %q (use tls for host:port targets, mcp for https:// URLs)", m.Prober)
	}
	ps.inRange(append(at, "timeout"), m.Timeout, MaxTimeout)
	m.TLSConfig.validate(append(at, "tls_config"), ps)
	ep := Endpoint{MCP: m.MCP}
	if m.Prober == ProberMCP {
		ep.URL = "https://module"
	}
	ep.validateMCP(append(at, "mcp"), ps)
	m.AllowedTargets.validate(append(at, "allowed_targets"), ps)
}

func (a *AllowedTargets) validate(at path, ps *problems) {
	a.prefixes = a.prefixes[:0]
	for i, h := range a.Hosts {
		switch {
		case h == "":
			ps.add(append(at, "hosts", i), "is empty")
		case strings.ContainsAny(h, ":/"):
			ps.add(append(at, "hosts", i), "%q must be a host name pattern, without scheme or port (ports go under ports)", h)
		case !doublestar.ValidatePattern(labels(h)):
			ps.add(append(at, "hosts", i), "%q is not a valid pattern", h)
		}
	}
	for i, s := range a.CIDRs {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			ps.add(append(at, "cidrs", i), "%q is not a CIDR such as 10.0.0.0/8 or fd00::/8", s)
			continue
		}
		a.prefixes = append(a.prefixes, p.Masked())
	}
	for i, p := range a.Ports {
		if p < 1 || p > 65535 {
			ps.add(append(at, "ports", i), "%d is not a port from 1 to 65535", p)
		}
	}
}
