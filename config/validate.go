package config

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"

	"github.com/bmatcuk/doublestar/v4"
)

func (c *Config) validate() problems {
	var ps problems
	if c.Concurrency < 1 {
		ps.add(path{"concurrency"}, "must be at least 1")
	}
	ps.positive(path{"interval"}, c.Interval)
	ps.positive(path{"timeout"}, c.Timeout)
	ps.positive(path{"posture_interval"}, c.PostureInterval)
	if c.Policy.MaxValidity < 0 {
		ps.add(path{"policy", "max_validity"}, "must not be negative")
	}
	seen := map[string]path{}
	for i := range c.Endpoints {
		at := path{"endpoints", i}
		c.Endpoints[i].validate(at, &ps)
		ps.unique(seen, c.Endpoints[i].Name, at)
	}
	for i := range c.Files {
		at := path{"files", i}
		c.Files[i].validate(at, &ps)
		ps.unique(seen, c.Files[i].Name, at)
	}
	return ps
}

func (ps *problems) positive(at path, d Duration) {
	if d <= 0 {
		ps.add(at, "must be greater than zero")
	}
}

// unique checks target names across endpoints and files: both become the target label.
func (ps *problems) unique(seen map[string]path, name string, at path) {
	if name == "" {
		return
	}
	if first, ok := seen[name]; ok {
		ps.add(append(at, "name"), "duplicate name %q, already used by %s", name, first)
		return
	}
	seen[name] = at
}

func (e *Endpoint) validate(at path, ps *problems) {
	if e.Name == "" {
		ps.add(append(at, "name"), "is required")
	}
	switch {
	case e.URL == "" && e.Address == "":
		ps.add(append(at, "url"), "one of url or address is required")
	case e.URL != "" && e.Address != "":
		ps.add(append(at, "address"), "set url or address, not both")
	case e.URL != "":
		validateURL(e.URL, append(at, "url"), ps)
	default:
		validateAddress(e.Address, append(at, "address"), ps)
	}
	ps.positive(append(at, "interval"), e.Interval)
	ps.positive(append(at, "timeout"), e.Timeout)
	e.TLSConfig.validate(append(at, "tls_config"), ps)
	e.validateMCP(append(at, "mcp"), ps)
	for i, pin := range e.PinSHA256 {
		if _, err := DecodePin(pin); err != nil {
			ps.add(append(at, "pin_sha256", i), "%v", err)
		}
	}
}

func validateURL(raw string, at path, ps *problems) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		ps.add(at, "is not a valid URL: %v", err.(*url.Error).Err)
	case u.Scheme != "https":
		ps.add(at, "must be an https:// URL, got scheme %q", u.Scheme)
	case u.Hostname() == "":
		ps.add(at, "has no host")
	case u.User != nil:
		ps.add(at, "must not carry credentials; use mcp.bearer_token_file")
	case u.Port() != "":
		validatePort(u.Port(), at, ps)
	}
}

func validateAddress(addr string, at path, ps *problems) {
	host, port, err := net.SplitHostPort(addr)
	switch {
	case err != nil:
		ps.add(at, "must be host:port: %v", err.(*net.AddrError).Err)
	case host == "":
		ps.add(at, "has no host")
	default:
		validatePort(port, at, ps)
	}
}

func validatePort(port string, at path, ps *problems) {
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		ps.add(at, "port %q is not a number from 1 to 65535", port)
	}
}

func (t *TLSConfig) validate(at path, ps *problems) {
	if t.CAFile != "" {
		if _, err := LoadCAFile(t.CAFile); err != nil {
			ps.add(append(at, "ca_file"), "%v", err)
		}
	}
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		ps.add(append(at, "key_file"), "is required when cert_file is set")
	case t.KeyFile != "" && t.CertFile == "":
		ps.add(append(at, "cert_file"), "is required when key_file is set")
	case t.CertFile != "":
		validateKeyPair(t.CertFile, t.KeyFile, at, ps)
	}
	if t.MaxVersion != 0 && t.MinVersion > t.MaxVersion {
		ps.add(append(at, "min_version"), "is above max_version")
	}
}

func validateKeyPair(certFile, keyFile string, at path, ps *problems) {
	if _, err := os.ReadFile(certFile); err != nil {
		ps.add(append(at, "cert_file"), "cannot read: %v", unwrapPath(err))
		return
	}
	if _, err := os.ReadFile(keyFile); err != nil {
		ps.add(append(at, "key_file"), "cannot read: %v", unwrapPath(err))
		return
	}
	// tls's errors name the problem, never the key bytes.
	if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
		ps.add(append(at, "cert_file"), "cannot use with key_file: %v", err)
	}
}

func (e *Endpoint) validateMCP(at path, ps *problems) {
	switch e.MCP.Transport {
	case "", TransportAuto, TransportStreamable, TransportSSE, TransportNone:
	default:
		ps.add(append(at, "transport"), "unknown transport %q (use auto, streamable, sse or none)", e.MCP.Transport)
	}
	if e.URL == "" && e.MCP.Transport != "" && e.MCP.Transport != TransportNone {
		ps.add(append(at, "transport"), "MCP needs a url endpoint; address endpoints only do TLS")
	}
	if f := e.MCP.BearerTokenFile; f != "" {
		if _, err := os.Stat(f); err != nil {
			ps.add(append(at, "bearer_token_file"), "cannot read: %v", unwrapPath(err))
		}
	}
}

func (f *FileGroup) validate(at path, ps *problems) {
	if f.Name == "" {
		ps.add(append(at, "name"), "is required")
	}
	if len(f.Paths) == 0 {
		ps.add(append(at, "paths"), "needs at least one path or glob")
	}
	for i, p := range f.Paths {
		if !doublestar.ValidatePattern(p) {
			ps.add(append(at, "paths", i), "%q is not a valid glob", p)
		}
	}
	for i, p := range f.KeyPaths {
		if !doublestar.ValidatePattern(p) {
			ps.add(append(at, "key_paths", i), "%q is not a valid glob", p)
		}
	}
	ps.positive(append(at, "interval"), f.Interval)
}

// LoadCAFile reads a PEM bundle of trusted roots.
func LoadCAFile(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("cannot read: %v", unwrapPath(err))
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}

// DecodePin accepts a SHA-256 SPKI pin in base64 (as HPKP and curl write it) or hex.
func DecodePin(pin string) ([]byte, error) {
	if b, err := base64.StdEncoding.DecodeString(pin); err == nil && len(b) == sha256.Size {
		return b, nil
	}
	if b, err := hex.DecodeString(pin); err == nil && len(b) == sha256.Size {
		return b, nil
	}
	return nil, fmt.Errorf("%q is not a base64 or hex SHA-256 digest", pin)
}

// unwrapPath drops the *PathError's path: the field already names the file.
func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
