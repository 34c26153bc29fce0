package e2e

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
)

// authClient reaches the exporter's own endpoint, with TLS and basic auth
// when set.
type authClient struct {
	scheme     string
	tls        *tls.Config
	user, pass string
}

func (c authClient) do(t *testing.T, method, addr, path string) (int, string, error) {
	t.Helper()
	req, err := http.NewRequest(method, c.scheme+"://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.user != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: c.tls, DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// bcryptHash hashes a basic-auth password at the lowest cost, to keep tests fast.
func bcryptHash(t *testing.T, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// The exporter serves its own endpoint with TLS, basic auth and client
// certificates from --web.config.file. Only a client with a trusted
// certificate and the right password gets an answer, on every path,
// reload included.
func TestOwnEndpointRequiresTLSClientCertAndPassword(t *testing.T) {
	dir := t.TempDir()
	serverCA, clientCA := testpki.NewCA("Exporter Server CA"), testpki.NewCA("Scraper Client CA")
	server := serverCA.Leaf("exporter")
	trusted := clientCA.Issue(testpki.Options{CN: "prometheus", Client: true})
	untrusted := testpki.NewCA("Other CA").Issue(testpki.Options{CN: "intruder", Client: true})
	web := writeConfig(t, filepath.Join(dir, "web.yml"), fmt.Sprintf(`tls_server_config:
  cert_file: %s
  key_file: %s
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: %s
basic_auth_users:
  prometheus: %s
`, testpki.WriteFile(t, dir, "server.crt", server.PEM()), testpki.WriteFile(t, dir, "server.key", server.KeyPEM()),
		testpki.WriteFile(t, dir, "client-ca.pem", clientCA.PEM()), bcryptHash(t, "correct horse")))
	cfg := writeConfig(t, filepath.Join(dir, "c.yml"), "endpoints: []\n")
	e := launchExporter(t, "--config.file="+cfg, "--web.config.file="+web)

	withCert := func(c *testpki.Cert) *tls.Config {
		tc := &tls.Config{RootCAs: testpki.Pool(serverCA)}
		if c != nil {
			tc.Certificates = []tls.Certificate{c.TLS()}
		}
		return tc
	}
	scraper := authClient{scheme: "https", tls: withCert(trusted), user: "prometheus", pass: "correct horse"}
	eventually(t, "the exporter serves an authenticated client", func() bool {
		code, _, err := scraper.do(t, "GET", e.addr, "/-/healthy")
		return err == nil && code == 200
	})

	refused := []struct {
		name   string
		client authClient
		code   int // 0: the TLS handshake or the connection fails
	}{
		{"plain HTTP", authClient{scheme: "http", user: "prometheus", pass: "correct horse"}, http.StatusBadRequest},
		{"no client certificate", authClient{scheme: "https", tls: withCert(nil), user: "prometheus", pass: "correct horse"}, 0},
		{"untrusted client certificate", authClient{scheme: "https", tls: withCert(untrusted), user: "prometheus", pass: "correct horse"}, 0},
		{"no password", authClient{scheme: "https", tls: withCert(trusted)}, http.StatusUnauthorized},
		{"wrong password", authClient{scheme: "https", tls: withCert(trusted), user: "prometheus", pass: "battery staple"}, http.StatusUnauthorized},
		{"unknown user", authClient{scheme: "https", tls: withCert(trusted), user: "root", pass: "correct horse"}, http.StatusUnauthorized},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			for _, req := range [][2]string{{"GET", "/metrics"}, {"GET", "/status"}, {"POST", "/-/reload"}} {
				code, body, err := tc.client.do(t, req[0], e.addr, req[1])
				if code != tc.code || (tc.code == 0) != (err != nil) || strings.Contains(body, "mcp_cert_exporter") {
					t.Errorf("%s %s: %d %v, want %d", req[0], req[1], code, err, tc.code)
				}
			}
		})
	}
	if code, body, err := scraper.do(t, "GET", e.addr, "/metrics"); err != nil || code != 200 || !strings.Contains(body, "mcp_cert_exporter_targets") {
		t.Errorf("authenticated scrape: %d %v", code, err)
	}
	if code, body, err := scraper.do(t, "POST", e.addr, "/-/reload"); err != nil || code != 200 {
		t.Errorf("authenticated reload: %d %q %v", code, body, err)
	}
}

// planted holds secrets where the exporter reads them, and every form in
// which one could leak.
type planted struct {
	dir                   string
	ca                    *testpki.Cert
	caFile                string
	clientCert, clientKey string // an mTLS client certificate and its key_file
	otherKey              string // a key that matches no certificate
	tokenFile             string
	user, password        string
	webConfig             string
	needles               map[string]string // secret form -> what it is
}

func plant(t *testing.T) *planted {
	t.Helper()
	dir := t.TempDir()
	p := &planted{dir: dir, ca: testpki.NewCA("Secrets CA"), user: "prometheus", password: "pw-" + rand.Text(), needles: map[string]string{}}
	p.caFile = testpki.WriteFile(t, dir, "ca.pem", p.ca.PEM())
	client := p.ca.Issue(testpki.Options{CN: "secrets client", Client: true})
	p.clientCert = testpki.WriteFile(t, dir, "client.crt", client.PEM())
	p.clientKey = testpki.WriteFile(t, dir, "client.key", p.keyPEM(t, "client key", client))

	// A certificate file that also holds its key, a key where certificates
	// are globbed, and a key in key_paths.
	served := p.ca.Leaf("keyed.test")
	testpki.WriteFile(t, dir, "files/combined.pem", append(served.PEM(), p.keyPEM(t, "key in a certificate file", served)...))
	testpki.WriteFile(t, dir, "files/stray.pem", p.keyPEM(t, "key matched by a certificate glob", p.ca.Leaf("stray")))
	testpki.WriteFile(t, dir, "files/served.key", p.keyPEM(t, "key in key_paths", served))
	p.otherKey = testpki.WriteFile(t, dir, "other.key", p.keyPEM(t, "mismatched key", p.ca.Leaf("other")))

	token := "tok-" + rand.Text()
	p.tokenFile = testpki.WriteFile(t, dir, "token", []byte(token+"\n"))
	p.needles[token] = "bearer token"

	hash := bcryptHash(t, p.password)
	p.webConfig = writeConfig(t, filepath.Join(dir, "web.yml"), fmt.Sprintf("basic_auth_users:\n  %s: %s\n", p.user, hash))
	p.needles[p.password] = "basic-auth password"
	p.needles[hash] = "basic-auth password hash"
	p.needles[base64.StdEncoding.EncodeToString([]byte(p.user+":"+p.password))] = "basic-auth header"
	return p
}

// keyPEM returns c's private key as PEM and records its forms as needles:
// each line of the PEM body, the DER in hex and the raw scalar in hex.
func (p *planted) keyPEM(t *testing.T, what string, c *testpki.Cert) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(c.Key)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := c.Key.(*ecdsa.PrivateKey).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	pemData := c.KeyPEM()
	for _, line := range strings.Split(string(pemData), "\n") {
		if !strings.HasPrefix(line, "-----") && len(line) >= 16 {
			p.needles[line] = what + " (PEM line)"
		}
	}
	p.needles[hex.EncodeToString(der)] = what + " (DER, hex)"
	p.needles[hex.EncodeToString(raw)] = what + " (scalar, hex)"
	return pemData
}

func (p *planted) config(mtls, plainTLS string) string {
	return fmt.Sprintf(`interval: 100ms
endpoints:
  - name: mtls
    address: %s
    tls_config: {ca_file: %s, cert_file: %s, key_file: %s}
  - name: mcp
    url: https://%s/mcp
    tls_config: {ca_file: %s}
    mcp: {bearer_token_file: %s}
files:
  - name: keyed
    paths: [%s/files/*.pem]
    key_paths: [%s/files/*.key]
`, mtls, p.caFile, p.clientCert, p.clientKey, plainTLS, p.caFile, p.tokenFile, p.dir, p.dir)
}

// badConfigs point the wrong fields at secret files, so that errors are
// about those files.
// queryToken is a credential written into a URL's query, which is refused.
const queryToken = "qt-7f3a9c1e5b02d84"

func (p *planted) badConfigs() map[string]string {
	ep := "endpoints:\n  - name: a\n    address: 127.0.0.1:1\n    "
	return map[string]string{
		"key as ca_file":       ep + "tls_config: {ca_file: " + p.clientKey + "}\n",
		"token as ca_file":     ep + "tls_config: {ca_file: " + p.tokenFile + "}\n",
		"key and cert swapped": ep + "tls_config: {cert_file: " + p.clientKey + ", key_file: " + p.clientCert + "}\n",
		"token as key_file":    ep + "tls_config: {cert_file: " + p.clientCert + ", key_file: " + p.tokenFile + "}\n",
		"key of another cert":  ep + "tls_config: {cert_file: " + p.clientCert + ", key_file: " + p.otherKey + "}\n",
		"token as cert_file":   ep + "tls_config: {cert_file: " + p.tokenFile + ", key_file: " + p.clientKey + "}\n",
		"token in a url query": "endpoints:\n  - name: a\n    url: https://127.0.0.1:1/mcp?tenant=x&access_token=" + queryToken + "\n",
	}
}

// Private keys, a bearer token and a basic-auth password are planted where
// the exporter reads them. The exporter uses them all, yet none of their
// forms appears in the debug log, /metrics, /status in HTML or JSON, the
// answers to refused requests and bad reloads, --config.check or check.
func TestSecretsNeverLeak(t *testing.T) {
	p := plant(t)
	p.needles[queryToken] = "token in a URL query"
	mtls := testpki.Serve(t, &tls.Config{
		Certificates: []tls.Certificate{p.ca.Leaf("mtls.test").TLS()},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    testpki.Pool(p.ca),
	})
	plainTLS := testpki.Serve(t, &tls.Config{Certificates: []tls.Certificate{p.ca.Leaf("mcp.test").TLS()}})
	cfg := writeConfig(t, filepath.Join(p.dir, "c.yml"), p.config(mtls, plainTLS))
	e := launchExporter(t, "--config.file="+cfg, "--web.config.file="+p.webConfig)
	scraper := authClient{scheme: "http", user: p.user, pass: p.password}
	get := func(path string) string {
		t.Helper()
		code, body, err := scraper.do(t, "GET", e.addr, path)
		if err != nil || code != 200 {
			t.Fatalf("GET %s: %d %v", path, code, err)
		}
		return body
	}
	// Every secret is used: the client key in a verified mTLS handshake,
	// the certificate file that holds a key, the password to scrape.
	eventually(t, "every target refreshed with the secrets in use", func() bool {
		code, body, err := scraper.do(t, "GET", e.addr, "/metrics")
		return err == nil && code == 200 &&
			strings.Contains(body, `ssl_certificate_verified{target="mtls"} 1`) &&
			strings.Contains(body, `ssl_certificate_verified{target="mcp"} 1`) &&
			strings.Contains(body, `subject_cn="keyed.test"`) &&
			strings.Contains(body, `reason="KEY_FILE"`)
	})

	said := map[string]string{
		"/metrics":            get("/metrics"),
		"/status":             get("/status"),
		"/status?format=json": get("/status?format=json"),
	}
	for _, target := range []string{"mtls", "mcp", "keyed"} { // the per-target views, which carry every detail
		for _, format := range []string{"html", "json"} {
			page := "/status?format=" + format + "&target=" + target
			said[page] = get(page)
		}
	}
	for name, c := range map[string]authClient{
		"no password":    {scheme: "http"},
		"wrong password": {scheme: "http", user: p.user, pass: p.password + "x"},
	} {
		code, body, _ := c.do(t, "GET", e.addr, "/metrics")
		if code != http.StatusUnauthorized {
			t.Errorf("%s: %d, want 401", name, code)
		}
		said["answer to a scrape with "+name] = body
	}
	for name, yml := range p.badConfigs() {
		bad := writeConfig(t, filepath.Join(p.dir, "bad.yml"), yml)
		code, out := runBinary(t, "--config.check", "--config.file="+bad)
		if code != 1 {
			t.Errorf("--config.check with %s: exit %d", name, code)
		}
		said["--config.check with "+name] = out
		writeConfig(t, cfg, yml)
		code, body, err := scraper.do(t, "POST", e.addr, "/-/reload")
		if err != nil || code != http.StatusInternalServerError {
			t.Errorf("reload with %s: %d %v", name, code, err)
		}
		said["reload with "+name] = body
	}
	writeConfig(t, cfg, p.config(mtls, plainTLS))
	if code, body, err := scraper.do(t, "POST", e.addr, "/-/reload"); err != nil || code != 200 {
		t.Errorf("reload of the good config: %d %q %v", code, body, err)
	}
	mtlsCheck := []string{"check", mtls, "--server-name", "localhost"}
	for name, args := range map[string][]string{
		"check with the client key":       {"--ca-file", p.caFile, "--cert-file", p.clientCert, "--key-file", p.clientKey},
		"check with a token as key":       {"--ca-file", p.caFile, "--cert-file", p.clientCert, "--key-file", p.tokenFile},
		"check with a key as ca_file":     {"--ca-file", p.clientKey, "--cert-file", p.clientCert, "--key-file", p.clientKey},
		"check with a mismatched key":     {"--ca-file", p.caFile, "--cert-file", p.clientCert, "--key-file", p.otherKey},
		"check with key and cert swapped": {"--ca-file", p.caFile, "--cert-file", p.clientKey, "--key-file", p.clientCert},
		"check without a client cert":     {"--ca-file", p.caFile},
	} {
		_, out := runBinary(t, append(mtlsCheck, args...)...)
		said[name] = out
	}
	_, said["check of a URL with a token in its query"] = runBinary(t, "check", "https://"+plainTLS+"/mcp?api_key="+queryToken)
	_, said["check of the token's endpoint"] = runBinary(t, "check", "https://"+plainTLS+"/mcp", "--ca-file", p.caFile, "--server-name", "localhost")
	if !strings.Contains(said["check with the client key"], "Verdict:      OK") {
		t.Errorf("check with the client key did not succeed:\n%s", said["check with the client key"])
	}
	eventually(t, "the last reload is logged", func() bool {
		return strings.Count(e.logs.String(), "config loaded") >= 2
	})
	said["debug log"] = e.logs.String()

	for where, text := range said {
		if text == "" {
			t.Errorf("%s: nothing to search", where)
		}
		for needle, what := range p.needles {
			if strings.Contains(text, needle) {
				t.Errorf("%s reveals the %s", where, what)
			}
		}
	}
	if len(p.needles) < 20 {
		t.Fatalf("only %d secret forms planted", len(p.needles))
	}
}
