// Package config holds the exporter's YAML schema, its defaults and its
// validation. Every error it returns names the file, the line and the field.
package config

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Defaults applied when a key is absent.
const (
	DefaultInterval        = 60 * time.Second
	DefaultTimeout         = 10 * time.Second
	DefaultConcurrency     = 32
	DefaultPostureInterval = time.Hour
)

// Config is the whole configuration file.
type Config struct {
	Interval        Duration    `yaml:"interval"`
	Timeout         Duration    `yaml:"timeout"`
	Concurrency     int         `yaml:"concurrency"`
	PostureInterval Duration    `yaml:"posture_interval"`
	Policy          Policy      `yaml:"policy"`
	Endpoints       []Endpoint  `yaml:"endpoints"`
	Files           []FileGroup `yaml:"files"`
	Limits          Limits      `yaml:"limits"`

	// Discovery: /probe modules and file_sd target files (modules.go).
	ProbeConcurrency int               `yaml:"probe_concurrency"`
	Modules          map[string]Module `yaml:"modules"`
	TargetFiles      []TargetFiles     `yaml:"target_files"`

	// File is the path the config was read from, for messages.
	File string `yaml:"-"`
}

// Endpoint is one TLS server to probe.
type Endpoint struct {
	Name      string    `yaml:"name"`
	URL       string    `yaml:"url"`
	Address   string    `yaml:"address"`
	Interval  Duration  `yaml:"interval"`
	Timeout   Duration  `yaml:"timeout"`
	TLSConfig TLSConfig `yaml:"tls_config"`
	MCP       MCPConfig `yaml:"mcp"`
	Posture   *bool     `yaml:"posture"`
	PinSHA256 []string  `yaml:"pin_sha256"`

	// Limits are the config's limits, copied here for the probe.
	Limits Limits `yaml:"-"`
}

// TLSConfig mirrors the keys of Prometheus' tls_config.
type TLSConfig struct {
	CAFile             string     `yaml:"ca_file"`
	CertFile           string     `yaml:"cert_file"`
	KeyFile            string     `yaml:"key_file"`
	ServerName         string     `yaml:"server_name"`
	InsecureSkipVerify bool       `yaml:"insecure_skip_verify"`
	MinVersion         TLSVersion `yaml:"min_version"`
	MaxVersion         TLSVersion `yaml:"max_version"`
	// KeyExchange is what the certificate probe's handshake offers when
	// the connection carries nothing of ours: classical (the default) or
	// default (Go's, the post-quantum hybrid first).
	KeyExchange string `yaml:"key_exchange"`
}

// Key exchanges of tls_config.key_exchange.
const (
	KeyExchangeClassical = "classical"
	KeyExchangeDefault   = "default"
)

// MCPConfig selects how the MCP handshake is spoken after TLS.
type MCPConfig struct {
	// Transport is auto, streamable, sse or none.
	Transport       string `yaml:"transport"`
	BearerTokenFile string `yaml:"bearer_token_file"`
}

// MCP transports.
const (
	TransportAuto       = "auto"
	TransportStreamable = "streamable"
	TransportSSE        = "sse"
	TransportNone       = "none"
)

// Policy is what the posture checks hold endpoints and certificates to.
type Policy struct {
	MinVersion            TLSVersion `yaml:"min_version"`
	AllowInsecureCiphers  bool       `yaml:"allow_insecure_ciphers"`
	RequireClientCert     bool       `yaml:"require_client_cert"`
	MaxValidity           Duration   `yaml:"max_validity"`
	MinHSTSMaxAge         Duration   `yaml:"min_hsts_max_age"`
	AllowSelfSignedLeaves bool       `yaml:"allow_self_signed"`
}

// FileGroup is a set of certificate files read from disk.
type FileGroup struct {
	Name     string    `yaml:"name"`
	Paths    []string  `yaml:"paths"`
	KeyPaths []string  `yaml:"key_paths"`
	KeyPairs []KeyPair `yaml:"key_pairs"`
	Interval Duration  `yaml:"interval"`
	// TrustStore marks a bundle of CA roots that clients may trust (the
	// system store): its certificates are exported with source
	// "trust_store", so alerts can leave roots no served chain uses alone,
	// and its keys are not looked for.
	TrustStore bool `yaml:"trust_store"`

	// Limits are the config's limits, copied here for the reader.
	Limits Limits `yaml:"-"`
}

// KeyPair names the certificate file a key file belongs to, when their
// names do not tell.
type KeyPair struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// Source is the source label of the group's certificates.
func (f *FileGroup) Source() string {
	if f.TrustStore {
		return "trust_store"
	}
	return "file"
}

// HostPort returns the host:port the endpoint dials.
func (e *Endpoint) HostPort() string {
	if e.Address != "" {
		return e.Address
	}
	u, err := url.Parse(e.URL)
	if err != nil {
		return ""
	}
	if u.Port() == "" {
		return net.JoinHostPort(u.Hostname(), "443")
	}
	return u.Host
}

// ServerName returns the SNI and verification name.
func (e *Endpoint) ServerName() string {
	if e.TLSConfig.ServerName != "" {
		return e.TLSConfig.ServerName
	}
	host, _, err := net.SplitHostPort(e.HostPort())
	if err != nil {
		return ""
	}
	return host
}

// MCPTransport is the effective MCP transport: none for address endpoints.
func (e *Endpoint) MCPTransport() string {
	if e.URL == "" {
		return TransportNone
	}
	if e.MCP.Transport == "" {
		return TransportAuto
	}
	return e.MCP.Transport
}

// PostureEnabled reports whether posture checks run for this endpoint.
func (e *Endpoint) PostureEnabled() bool { return e.Posture == nil || *e.Posture }

// LoadFile reads and validates a config file.
func LoadFile(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, Errors{{File: path, Msg: fmt.Sprintf("cannot read: %v", unwrapPath(err)), cause: err}}
	}
	return Parse(data, path)
}

// Parse decodes YAML strictly, applies defaults and validates. Relative file
// paths in the config are taken from the directory of file, as Prometheus does.
func Parse(data []byte, file string) (*Config, error) {
	root, second, err := parseDocs(data)
	if err != nil {
		return nil, syntaxError(file, data, err)
	}
	if second > 0 {
		return nil, Errors{{File: file, Line: second, Msg: "found a second YAML document; the config must be a single document"}}
	}
	// yaml.v3 stops at the first duplicate key; report them all.
	if dups := duplicateKeys(file, root); len(dups) > 1 {
		return nil, dups
	}
	cfg := &Config{File: file}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, decodeError(file, root, err)
	}
	if err := cfg.finish(file, root); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Finish applies defaults to a config built in code and validates it, as
// Parse does for a file.
func (c *Config) Finish() error { return c.finish("", &yaml.Node{}) }

func (c *Config) finish(file string, root *yaml.Node) error {
	c.File = file
	c.applyDefaults(root)
	if file != "" {
		c.resolvePaths(filepath.Dir(file))
	}
	if ps := c.validate(); len(ps) > 0 {
		return ps.resolve(file, root)
	}
	return nil
}

// parseDocs returns the first YAML document and the line of a second one
// that holds anything, or 0.
func parseDocs(data []byte) (*yaml.Node, int, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs [2]yaml.Node
	for i := range docs {
		if err := dec.Decode(&docs[i]); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, 0, err
		}
	}
	second := 0
	if c := docs[1].Content; len(c) > 0 && c[0].ShortTag() != "!!null" {
		second = docs[1].Line
	}
	return &docs[0], second, nil
}

// applyDefaults fills the keys the document leaves out. A key written as 0
// keeps its 0, so validation rejects it instead of silently replacing it.
func (c *Config) applyDefaults(root *yaml.Node) {
	unset := func(p ...any) bool { return !isSet(root, p) }
	if c.Interval == 0 && unset("interval") {
		c.Interval = Duration(DefaultInterval)
	}
	if c.Timeout == 0 && unset("timeout") {
		c.Timeout = Duration(DefaultTimeout)
	}
	if c.Concurrency == 0 && unset("concurrency") {
		c.Concurrency = DefaultConcurrency
	}
	if c.PostureInterval == 0 && unset("posture_interval") {
		c.PostureInterval = Duration(DefaultPostureInterval)
	}
	if c.Policy.MinVersion == 0 {
		c.Policy.MinVersion = TLSVersion(tls.VersionTLS12)
	}
	for i := range c.Endpoints {
		e := &c.Endpoints[i]
		if e.Interval == 0 && unset("endpoints", i, "interval") {
			e.Interval = c.Interval
		}
		if e.Timeout == 0 && unset("endpoints", i, "timeout") {
			e.Timeout = c.Timeout
		}
	}
	for i := range c.Files {
		if c.Files[i].Interval == 0 && unset("files", i, "interval") {
			c.Files[i].Interval = c.Interval
		}
	}
	c.applyLimitDefaults(unset)
	c.applyDiscoveryDefaults(unset)
}

// resolvePaths makes relative paths relative to the config file, so the
// exporter's working directory does not change what a config means.
func (c *Config) resolvePaths(dir string) {
	join := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	for i := range c.Endpoints {
		t := &c.Endpoints[i].TLSConfig
		join(&t.CAFile)
		join(&t.CertFile)
		join(&t.KeyFile)
		join(&c.Endpoints[i].MCP.BearerTokenFile)
	}
	for i := range c.Files {
		for j := range c.Files[i].Paths {
			join(&c.Files[i].Paths[j])
		}
		for j := range c.Files[i].KeyPaths {
			join(&c.Files[i].KeyPaths[j])
		}
		for j := range c.Files[i].KeyPairs {
			join(&c.Files[i].KeyPairs[j].Cert)
			join(&c.Files[i].KeyPairs[j].Key)
		}
	}
	c.resolveDiscoveryPaths(join)
}

// Names of every target, endpoints and file groups alike, for uniqueness.
func (c *Config) targetNames() map[string]bool {
	names := make(map[string]bool, len(c.Endpoints)+len(c.Files))
	for _, e := range c.Endpoints {
		names[e.Name] = true
	}
	for _, f := range c.Files {
		names[f.Name] = true
	}
	return names
}

// String renders a redacted summary, safe to log.
func (e *Endpoint) String() string {
	if e.URL == "" {
		return fmt.Sprintf("%s (%s)", e.Name, strings.TrimSpace(e.Address))
	}
	u, err := url.Parse(e.URL)
	if err != nil {
		return fmt.Sprintf("%s (invalid URL)", e.Name)
	}
	return fmt.Sprintf("%s (%s)", e.Name, u.Redacted())
}
