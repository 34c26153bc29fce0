package config

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/bmatcuk/doublestar/v4"
)

func (c *Config) validate() problems {
	var ps problems
	switch {
	case c.Concurrency < 1:
		ps.add(path{"concurrency"}, "must be at least 1")
	case c.Concurrency > MaxConcurrency:
		ps.add(path{"concurrency"}, "must be at most %d, got %d", MaxConcurrency, c.Concurrency)
	}
	ps.inRange(path{"interval"}, c.Interval, MaxInterval)
	ps.inRange(path{"timeout"}, c.Timeout, MaxTimeout)
	ps.inRange(path{"posture_interval"}, c.PostureInterval, MaxInterval)
	ps.notAbove(path{"policy", "max_validity"}, c.Policy.MaxValidity, MaxPolicyDuration)
	ps.notAbove(path{"policy", "min_hsts_max_age"}, c.Policy.MinHSTSMaxAge, MaxPolicyDuration)
	c.Limits.validate(&ps)
	seen := map[string]path{}
	for i := range c.Endpoints {
		at := path{"endpoints", i}
		e := &c.Endpoints[i]
		e.validate(at, &ps)
		c.inherited(&ps, append(at, "interval"), e.Interval, c.Interval, MaxInterval)
		c.inherited(&ps, append(at, "timeout"), e.Timeout, c.Timeout, MaxTimeout)
		ps.unique(seen, e.Name, at)
	}
	for i := range c.Files {
		at := path{"files", i}
		c.Files[i].validate(at, &ps)
		c.inherited(&ps, append(at, "interval"), c.Files[i].Interval, c.Interval, MaxInterval)
		ps.unique(seen, c.Files[i].Name, at)
	}
	c.validateDiscovery(&ps)
	return ps
}

// inherited checks a target's duration unless it is the top-level value,
// which is checked (and blamed) at the top level already.
func (c *Config) inherited(ps *problems, at path, d, top Duration, max time.Duration) {
	if d != top {
		ps.inRange(at, d, max)
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
		ps.add(at, "needs a url or an address")
	case e.URL != "" && e.Address != "":
		ps.add(append(at, "address"), "set url or address, not both")
	case e.URL != "":
		validateURL(e.URL, append(at, "url"), ps)
	default:
		validateAddress(e.Address, append(at, "address"), ps)
	}
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
	case !strings.Contains(raw, "://"):
		ps.add(at, "must be an https:// URL such as https://mcp.example.com/mcp")
	case err != nil:
		ps.add(at, "is not a valid URL: %s", urlProblem(raw, err))
	case u.Scheme != "https":
		ps.add(at, "must be an https:// URL, got scheme %q", u.Scheme)
	case u.Hostname() == "":
		ps.add(at, "has no host")
	case !validHost(u.Hostname()):
		ps.add(at, "host %q is not a DNS name or an IP address", u.Hostname())
	case u.User != nil:
		ps.add(at, "must not carry credentials; use mcp.bearer_token_file")
	case u.Port() != "":
		validatePort(u.Port(), at, ps)
	}
	if err == nil {
		if name := credentialParam(u); name != "" {
			ps.add(at, "query parameter %q looks like a credential, which /status and logs would show; "+
				"use mcp.bearer_token_file", name)
		}
	}
}

// urlProblem explains why a URL does not parse. url.Parse quotes the bad
// part, which in a URL with user info can be part of the password.
func urlProblem(raw string, err error) string {
	var ue *url.Error
	if strings.Contains(raw, "@") || !errors.As(err, &ue) {
		return "check its user info, host and port"
	}
	return strings.TrimPrefix(ue.Err.Error(), "net/url: ")
}

func validateAddress(addr string, at path, ps *problems) {
	host, port, err := net.SplitHostPort(addr)
	var ae *net.AddrError
	switch {
	case strings.Contains(addr, "://"):
		ps.add(at, "must be host:port without a scheme; use url for an https:// URL")
	case errors.As(err, &ae):
		ps.add(at, "must be host:port: %s", ae.Err)
	case err != nil:
		ps.add(at, "must be host:port")
	case host == "":
		ps.add(at, "has no host")
	case !validHost(host):
		ps.add(at, "host %q is not a DNS name or an IP address", host)
	default:
		validatePort(port, at, ps)
	}
}

// validHost accepts an IP address (with a zone, as in fe80::1%eth0) or a
// name of ASCII letters, digits, '-', '_' and '.'. url.Parse lets through
// hosts such as "]" that no dialer or SNI can use; internationalised names
// are written in their xn-- form, as DNS has them.
func validHost(host string) bool {
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	for _, c := range []byte(host) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return strings.Trim(host, ".") != ""
}

func validatePort(port string, at path, ps *problems) {
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		ps.add(at, "port %q is not a number from 1 to 65535", port)
	}
}

func (t *TLSConfig) validate(at path, ps *problems) {
	if t.CAFile != "" {
		if _, err := LoadCAFile(t.CAFile); err != nil {
			ps.addErr(append(at, "ca_file"), err)
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
	switch t.KeyExchange {
	case "", KeyExchangeClassical, KeyExchangeDefault:
	default:
		ps.add(append(at, "key_exchange"), "unknown key exchange %q (use classical or default)", t.KeyExchange)
	}
}

func validateKeyPair(certFile, keyFile string, at path, ps *problems) {
	certPEM, certErr := readConfigFile(certFile)
	if certErr != nil {
		ps.addErr(append(at, "cert_file"), certErr)
	}
	keyPEM, keyErr := readConfigFile(keyFile)
	if keyErr != nil {
		ps.addErr(append(at, "key_file"), keyErr)
	}
	if certErr != nil || keyErr != nil {
		return
	}
	// tls's errors name the problem, never the key bytes.
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		ps.add(append(at, "cert_file"), "cannot be used with key_file: %s", strings.TrimPrefix(err.Error(), "tls: "))
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
		// The token is read only to check it is there; it goes nowhere.
		token, err := readConfigFile(f)
		switch {
		case err != nil:
			ps.addErr(append(at, "bearer_token_file"), err)
		case len(bytes.TrimSpace(token)) == 0:
			ps.add(append(at, "bearer_token_file"), "%q is empty", f)
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
	validateGlobs(f.Paths, append(at, "paths"), ps)
	validateGlobs(f.KeyPaths, append(at, "key_paths"), ps)
	for i, kp := range f.KeyPairs {
		if kp.Cert == "" {
			ps.add(append(at, "key_pairs", i, "cert"), "is required: a key pair names a certificate file and its key file")
		}
		if kp.Key == "" {
			ps.add(append(at, "key_pairs", i, "key"), "is required: a key pair names a certificate file and its key file")
		}
	}
	if f.TrustStore && len(f.KeyPaths)+len(f.KeyPairs) > 0 {
		ps.add(append(at, "trust_store"), "cannot be used with key_paths or key_pairs: a trust store holds CA roots, not their keys")
	}
}

func validateGlobs(globs []string, at path, ps *problems) {
	for i, p := range globs {
		switch {
		case p == "":
			ps.add(append(at, i), "is empty")
		case !doublestar.ValidatePattern(p):
			ps.add(append(at, i), "%q is not a valid glob", p)
		}
	}
}

// maxConfigFileSize bounds what validation reads, so a path that names a
// device or a huge file cannot stall a load or a reload.
const maxConfigFileSize = 4 << 20

// readConfigFile reads a file the config names.
func readConfigFile(file string) ([]byte, error) {
	data, err := readRegular(file)
	if err != nil {
		return nil, fmt.Errorf("cannot read %q: %w", file, unwrapPath(err))
	}
	return data, nil
}

// readRegular refuses what is not a regular file: opening a FIFO would
// block until a writer comes.
func readRegular(file string) ([]byte, error) {
	fi, err := os.Stat(file)
	if err != nil {
		return nil, err
	}
	switch {
	case fi.IsDir():
		return nil, errors.New("is a directory")
	case !fi.Mode().IsRegular():
		return nil, errors.New("not a regular file")
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigFileSize+1))
	if err == nil && len(data) > maxConfigFileSize {
		err = fmt.Errorf("larger than %d MiB", maxConfigFileSize>>20)
	}
	return data, err
}

// LoadCAFile reads a PEM bundle of trusted roots.
func LoadCAFile(file string) (*x509.CertPool, error) {
	pool, _, err := LoadCABundle(file)
	return pool, err
}

// LoadCABundle is LoadCAFile that also returns the certificates of the pool,
// which a pool does not list.
func LoadCABundle(file string) (*x509.CertPool, []*x509.Certificate, error) {
	data, err := readConfigFile(file)
	if err != nil {
		return nil, nil, err
	}
	pool := x509.NewCertPool()
	var certs []*x509.Certificate
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if c, err := x509.ParseCertificate(b.Bytes); err == nil && b.Type == "CERTIFICATE" && len(b.Headers) == 0 {
			pool.AddCert(c)
			certs = append(certs, c)
		}
	}
	if len(certs) == 0 {
		return nil, nil, fmt.Errorf("%q holds no PEM certificate", file)
	}
	return pool, certs, nil
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
