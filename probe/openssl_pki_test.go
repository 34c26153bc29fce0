package probe

import (
	"crypto/tls"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
	"github.com/mcpcert/mcp_cert_exporter/internal/tooltest"
)

// osslPKI issues certificates with the openssl CLI (`openssl ca`, whose
// -startdate and -enddate set any validity window, past or future), so that
// the oracle tests do not judge certificates our own code made.
type osslPKI struct {
	t       *testing.T
	openssl string
	dir     string
	keyOf   map[string]string // certificate name -> key name

	now, past, future time.Time // past and future: the window of long-lived CAs
}

// osslCAConfig is the smallest `openssl ca` setup: a database (which
// `openssl ocsp -index` reads too) and the extensions of each kind of
// certificate.
const osslCAConfig = `[ca]
default_ca = CA_default
[CA_default]
database = ./index.txt
new_certs_dir = ./new
serial = ./serial
default_md = sha256
policy = policy_any
unique_subject = no
email_in_dn = no
[policy_any]
commonName = supplied
[ca_ext]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier = hash
[leaf_ext]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1
[otherhost_ext]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:other.example
[ocsp_ext]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature
extendedKeyUsage = OCSPSigning
[noeku_ext]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature
`

func newOSSLPKI(t *testing.T) *osslPKI {
	t.Helper()
	now := time.Now()
	p := &osslPKI{t: t, openssl: tooltest.Require(t, "openssl"), dir: t.TempDir(), keyOf: map[string]string{},
		now: now, past: now.Add(-400 * day), future: now.Add(3000 * day)}
	testpki.WriteFile(t, p.dir, "ca.cnf", []byte(osslCAConfig))
	testpki.WriteFile(t, p.dir, "index.txt", nil)
	testpki.WriteFile(t, p.dir, "serial", []byte("01\n"))
	if err := os.Mkdir(filepath.Join(p.dir, "new"), 0o700); err != nil {
		t.Fatal(err)
	}
	return p
}

// run runs openssl in the PKI's directory and returns its output.
func (p *osslPKI) run(args ...string) string {
	p.t.Helper()
	cmd := exec.Command(p.openssl, args...)
	cmd.Dir = p.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		p.t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// path is name's file in the PKI's directory.
func (p *osslPKI) path(name string) string { return filepath.Join(p.dir, name) }

// key makes name.key once (P-256) and returns it; reissuing a certificate
// reuses its name's key.
func (p *osslPKI) key(name string) string {
	k := p.path(name + ".key")
	if !exists(k) {
		p.run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", k)
	}
	return k
}

// issue signs cert out with CN cn and name's key, valid from..to, with the
// extensions section ext and extra `openssl ca` arguments; issuer "" makes
// it self-signed.
func (p *osslPKI) issue(out, name, cn, issuer, ext string, from, to time.Time, extra ...string) string {
	p.t.Helper()
	csr := p.path(out + ".csr")
	req := []string{"req", "-new", "-subj", "/CN=" + cn, "-out", csr}
	if k := p.path(name + ".key"); exists(k) {
		req = append(req, "-key", k)
	} else { // one process fewer than genpkey, then req
		req = append(req, "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-noenc", "-keyout", k)
	}
	p.run(req...)
	args := []string{"ca", "-config", "ca.cnf", "-batch", "-notext", "-rand_serial", "-in", csr, "-out", p.path(out + ".pem"),
		"-startdate", osslTime(from), "-enddate", osslTime(to), "-extensions", ext}
	args = append(args, extra...)
	if issuer == "" {
		args = append(args, "-selfsign", "-keyfile", p.key(name))
	} else {
		args = append(args, "-cert", p.path(issuer+".pem"), "-keyfile", p.key(p.keyOf[issuer]))
	}
	p.run(args...)
	p.keyOf[out] = name
	return p.path(out + ".pem")
}

// ca issues a CA certificate valid from past to future, with its own key;
// issuer "" makes it a root.
func (p *osslPKI) ca(name, cn, issuer string) string {
	return p.issue(name, name, cn, issuer, "ca_ext", p.past, p.future)
}

const day = 24 * time.Hour

func osslTime(t time.Time) string { return t.UTC().Format("20060102150405Z") }

// bundle concatenates PEM files into name and returns its path.
func (p *osslPKI) bundle(name string, pems ...string) string {
	p.t.Helper()
	var all []byte
	for _, f := range pems {
		b, err := os.ReadFile(f)
		if err != nil {
			p.t.Fatal(err)
		}
		all = append(all, b...)
	}
	return testpki.WriteFile(p.t, p.dir, name, all)
}

// serve runs a Go TLS server on 127.0.0.1 with the chain file and the key
// of name, stapling staple when not nil.
func (p *osslPKI) serve(chain, name string, staple []byte) string {
	p.t.Helper()
	cert, err := tls.LoadX509KeyPair(chain, p.key(name))
	if err != nil {
		p.t.Fatal(err)
	}
	cert.OCSPStaple = staple
	return testpki.Serve(p.t, &tls.Config{Certificates: []tls.Certificate{cert}})
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
