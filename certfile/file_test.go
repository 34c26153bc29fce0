package certfile

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"

	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

// testChain is one PKI for all file tests: CNs name the certificates in
// the expectations.
type testChain struct {
	root, inter, leaf, leafB *testpki.Cert
}

var chain = sync.OnceValue(func() testChain {
	root := testpki.NewCA("root")
	inter := root.Intermediate("inter")
	return testChain{root: root, inter: inter, leaf: inter.Leaf("leaf"), leafB: inter.Leaf("leafB")}
})

// longAgo dates test files so that the reader may cache them (see racyWindow).
var longAgo = time.Now().Add(-time.Hour).Truncate(time.Second)

// put writes dir/name, dated longAgo, and returns its path.
func put(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := testpki.WriteFile(t, dir, name, data)
	backdate(t, p)
	return p
}

func backdate(t testing.TB, p string) {
	t.Helper()
	if err := os.Chtimes(p, longAgo, longAgo); err != nil {
		t.Fatal(err)
	}
}

// replace renames a new file over dir/name, as certbot and most deploy tools do.
func replace(t testing.TB, dir, name string, data []byte) {
	t.Helper()
	tmp := put(t, dir, name+".tmp", data)
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

// symlink makes (or atomically replaces) link pointing to target.
func symlink(t testing.TB, target, link string) {
	t.Helper()
	tmp := link + ".tmp"
	if err := os.Symlink(target, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, link); err != nil {
		t.Fatal(err)
	}
}

// k8sSecret lays out files the way the kubelet's atomic writer does:
// dir/..<version>/name holds the data, dir/..data links to the version and
// dir/name links to ..data/name. Calling it again swaps versions.
func k8sSecret(t testing.TB, dir, version string, files map[string][]byte) {
	t.Helper()
	for name, data := range files {
		put(t, filepath.Join(dir, ".."+version), name, data)
		if _, err := os.Lstat(filepath.Join(dir, name)); err != nil {
			symlink(t, filepath.Join("..data", name), filepath.Join(dir, name))
		}
	}
	symlink(t, ".."+version, filepath.Join(dir, "..data"))
}

// certbot lays out dir/archive/example.com/fullchainN.pem and links
// dir/live/example.com/fullchain.pem to it; calling it again renews.
func certbot(t testing.TB, dir string, n int, data []byte) {
	t.Helper()
	name := fmt.Sprintf("fullchain%d.pem", n)
	put(t, filepath.Join(dir, "archive", "example.com"), name, data)
	live := filepath.Join(dir, "live", "example.com")
	if err := os.MkdirAll(live, 0o755); err != nil {
		t.Fatal(err)
	}
	symlink(t, filepath.Join("..", "..", "archive", "example.com", name), filepath.Join(live, "fullchain.pem"))
}

func read(r *FileReader, dir string, patterns ...string) *FileResult {
	g := config.FileGroup{Name: "g"}
	for _, p := range patterns {
		g.Paths = append(g.Paths, filepath.Join(dir, p))
	}
	return r.Read(context.Background(), g)
}

// summary renders states as "path REASON role:CN ..." with paths relative
// to dir, so that expectations read like a listing.
func summary(dir string, files []FileState) []string {
	out := make([]string, 0, len(files))
	for _, f := range files {
		rel, err := filepath.Rel(dir, f.Path)
		if err != nil {
			rel = f.Path
		}
		reason := string(f.Reason)
		if reason == "" {
			reason = "OK"
		}
		s := rel + " " + reason
		for _, c := range f.Certificates {
			s += " " + c.Role + ":" + c.SubjectCN
		}
		out = append(out, s)
	}
	return out
}

func details(files []FileState) string {
	var ds []string
	for _, f := range files {
		ds = append(ds, f.Detail)
	}
	return strings.Join(ds, "\n")
}

// leak returns a stretch of detail that also occurs in data, if any.
func leak(detail string, data []byte) string {
	const n = 16
	for i := 0; i+n <= len(detail); i++ {
		if bytes.Contains(data, []byte(detail[i:i+n])) {
			return detail[i : i+n]
		}
	}
	return ""
}

func TestReadFormats(t *testing.T) {
	c := chain()
	pkcs8, err := x509.MarshalPKCS8PrivateKey(c.leaf.Key)
	if err != nil {
		t.Fatal(err)
	}
	pemOf := func(typ string, b []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}) }
	badB64 := c.leaf.PEM()
	badB64[40] = '!'
	// A URI with an empty label fails to parse, and x509 quotes it in the error.
	badURI, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "bad-uri"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour),
		URIs: []*url.URL{{Scheme: "https", Host: "a..b", Path: "/secret-value-in-cert"}},
	}, c.inter.Cert, c.leaf.Key.Public(), c.inter.Key)
	if err != nil {
		t.Fatal(err)
	}
	full := append(c.leaf.PEM(), bytes.Repeat([]byte("\n"), maxFileSize-len(c.leaf.PEM()))...)
	p7, err := pkcs7.DegenerateCertificate(append(slices.Clone(c.leaf.Cert.Raw), c.inter.Cert.Raw...))
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "csr"}}, c.leaf.Key)
	if err != nil {
		t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(c.leaf.Key.Public())
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"PEM bundle leaf first", testpki.Bundle(c.leaf, c.inter, c.root), "OK leaf:leaf intermediate:inter root:root"},
		{"PEM bundle root first: roles by certificate", testpki.Bundle(c.root, c.inter, c.leaf), "OK root:root intermediate:inter leaf:leaf"},
		{"repeated certificate counted once", testpki.Bundle(c.leaf, c.inter, c.leaf), "OK leaf:leaf intermediate:inter"},
		{"key before certificate", append(c.leaf.KeyPEM(), c.leaf.PEM()...), "OK leaf:leaf"},
		{"DER", c.leaf.Cert.Raw, "OK leaf:leaf"},
		{"DER concatenated", append(slices.Clone(c.leaf.Cert.Raw), c.inter.Cert.Raw...), "OK leaf:leaf intermediate:inter"},
		{"exactly the size limit", full, "OK leaf:leaf"},
		{"PKCS#7 DER (.p7b)", p7, "OK leaf:leaf intermediate:inter"},
		{"PKCS#7 PEM", pemOf("PKCS7", p7), "OK leaf:leaf intermediate:inter"},
		{"private key PEM", c.leaf.KeyPEM(), "KEY_FILE"},
		{"private key DER", pkcs8, "KEY_FILE"},
		{"public key DER", spki, "KEY_FILE"},
		{"certificate request PEM", pemOf("CERTIFICATE REQUEST", []byte("not even a CSR, but it is no certificate")), "CSR_FILE"},
		{"certificate request DER", csr, "CSR_FILE"},
		{"CRL only", pemOf("X509 CRL", []byte("crl")), "NO_CERTIFICATE"},
		{"empty", nil, "NO_CERTIFICATE"},
		{"text", []byte("this file lists where the certificates live\n"), "NO_CERTIFICATE"},
		{"PEM with broken base64", badB64, "PARSE_ERROR"},
		{"PEM cut short", c.leaf.PEM()[:200], "PARSE_ERROR"},
		{"PEM holding a truncated certificate", pemOf("CERTIFICATE", c.leaf.Cert.Raw[:100]), "PARSE_ERROR"},
		{"DER truncated", c.leaf.Cert.Raw[:len(c.leaf.Cert.Raw)-10], "PARSE_ERROR"},
		{"certificate x509 rejects", pemOf("CERTIFICATE", badURI), "PARSE_ERROR"},
		{"over the size limit", make([]byte, maxFileSize+1), "TOO_LARGE"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			put(t, dir, "f", tc.data)
			res := read(NewFileReader(), dir, "f")
			if got := summary(dir, res.Files); !slices.Equal(got, []string{"f " + tc.want}) {
				t.Fatalf("got %q, want %q", got, "f "+tc.want)
			}
			if s := leak(res.Files[0].Detail, tc.data); s != "" {
				t.Errorf("detail %q repeats file content %q", res.Files[0].Detail, s)
			}
			if strings.Contains(res.Files[0].Detail, "secret-value") {
				t.Errorf("detail %q quotes the certificate", res.Files[0].Detail)
			}
		})
	}
}

func TestFileCertInfo(t *testing.T) {
	ca := chain().inter
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name       string
		opts       testpki.Options
		serial     int64
		wantSerial string // as `openssl x509 -noout -serial` prints it
		wantKey    string
		wantBits   int
	}{
		{"ECDSA", testpki.Options{CN: "ec"}, 128, "80", "ECDSA", 256},
		{"RSA", testpki.Options{CN: "rsa", RSABits: 2048}, 1001, "03E9", "RSA", 2048},
		{"Ed25519", testpki.Options{CN: "ed", Key: edKey}, 65536, "010000", "Ed25519", 256},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Template = func(x *x509.Certificate) {
				x.SerialNumber = big.NewInt(tc.serial)
				x.EmailAddresses = []string{"ops@example.com"}
				x.URIs = []*url.URL{{Scheme: "spiffe", Host: "example.com", Path: "/mcp"}}
			}
			cert := ca.Issue(tc.opts)
			dir := t.TempDir()
			put(t, dir, "c.pem", cert.PEM())
			res := read(NewFileReader(), dir, "c.pem")
			if len(res.Files) != 1 || len(res.Files[0].Certificates) != 1 {
				t.Fatalf("got %+v", res.Files)
			}
			got := res.Files[0].Certificates[0]
			fp := sha256.Sum256(cert.Cert.Raw)
			spki := sha256.Sum256(cert.Cert.RawSubjectPublicKeyInfo)
			want := probe.CertInfo{
				Role: probe.RoleLeaf, SubjectCN: tc.opts.CN, IssuerCN: "inter", Serial: tc.wantSerial,
				NotBefore: cert.Cert.NotBefore, NotAfter: cert.Cert.NotAfter,
				FingerprintSHA256: hex.EncodeToString(fp[:]), SPKISHA256: base64.StdEncoding.EncodeToString(spki[:]),
				SANs:    []string{"localhost", "127.0.0.1", "ops@example.com", "spiffe://example.com/mcp"},
				KeyType: tc.wantKey, KeyBits: tc.wantBits, SignatureAlgorithm: "ECDSA-SHA256",
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

// loop puts a certificate in dir/a/b and a symlink back up the tree, which
// a walk that follows links would go around until the kernel's ELOOP.
func loop(t *testing.T, dir, link, target string) {
	t.Helper()
	put(t, dir, "a/b/c.crt", chain().leaf.PEM())
	symlink(t, target, filepath.Join(dir, link))
}

func TestReadGlobs(t *testing.T) {
	c := chain()
	leaf := c.leaf.PEM()
	cases := []struct {
		name       string
		setup      func(t *testing.T, dir string)
		patterns   []string
		want       []string
		wantDetail string
		asNonRoot  bool // root reads and lists whatever the mode bits say
	}{
		{
			name: "** across nested directories",
			setup: func(t *testing.T, dir string) {
				put(t, dir, "a.crt", leaf)
				put(t, dir, "sub/b.crt", leaf)
				put(t, dir, "sub/deep/er/c.crt", leaf)
				put(t, dir, "sub/notes.txt", []byte("x"))
			},
			patterns: []string{"**/*.crt"},
			want:     []string{"a.crt OK leaf:leaf", "sub/b.crt OK leaf:leaf", "sub/deep/er/c.crt OK leaf:leaf"},
		},
		{
			name:     "glob that matches nothing",
			setup:    func(t *testing.T, dir string) { put(t, dir, "a.crt", leaf) },
			patterns: []string{"*.pem", "nodir/**/*.pem"},
			want:     []string{"*.pem NO_MATCH", "nodir/**/*.pem NO_MATCH"},
		},
		{
			name:       "missing literal path",
			setup:      func(t *testing.T, dir string) {},
			patterns:   []string{"missing.crt"},
			want:       []string{"missing.crt NO_MATCH"},
			wantDetail: "no such file or directory",
		},
		{
			name: "a file matched by several patterns is reported once",
			setup: func(t *testing.T, dir string) {
				put(t, dir, "a.crt", leaf)
				put(t, dir, "sub/b.crt", leaf)
			},
			patterns: []string{"*.crt", "**/*.crt", "a.crt", "./sub/../a.crt"},
			want:     []string{"a.crt OK leaf:leaf", "sub/b.crt OK leaf:leaf"},
		},
		{
			name: "directories are not files",
			setup: func(t *testing.T, dir string) {
				put(t, dir, "a.crt", leaf)
				put(t, dir, "dir.crt/b.txt", leaf)
				symlink(t, "dir.crt", filepath.Join(dir, "link.crt"))
			},
			patterns: []string{"*.crt", "dir*"},
			want:     []string{"a.crt OK leaf:leaf", "dir* NO_MATCH"},
		},
		{
			name: "a bad file does not hide the others",
			setup: func(t *testing.T, dir string) {
				put(t, dir, "a.crt", leaf)
				put(t, dir, "b.key", c.leaf.KeyPEM())
				put(t, dir, "c.crt", leaf)
			},
			patterns: []string{"*"},
			want:     []string{"a.crt OK leaf:leaf", "b.key KEY_FILE", "c.crt OK leaf:leaf"},
		},
		{
			name:     "kubernetes secret mount: each certificate once",
			setup:    func(t *testing.T, dir string) { k8sSecret(t, dir, "2024_01_01", map[string][]byte{"tls.crt": leaf}) },
			patterns: []string{"**/*.crt", "*"},
			want:     []string{"tls.crt OK leaf:leaf"},
		},
		{
			name:     "kubernetes ..data named before any wildcard",
			setup:    func(t *testing.T, dir string) { k8sSecret(t, dir, "2024_01_01", map[string][]byte{"tls.crt": leaf}) },
			patterns: []string{"..data/*.crt"},
			want:     []string{"..data/tls.crt OK leaf:leaf"},
		},
		{
			name:     "certbot live links into archive",
			setup:    func(t *testing.T, dir string) { certbot(t, dir, 1, testpki.Bundle(c.leaf, c.inter)) },
			patterns: []string{"live/**/fullchain.pem"},
			want:     []string{"live/example.com/fullchain.pem OK leaf:leaf intermediate:inter"},
		},
		{
			name:     "symlink to its own directory",
			setup:    func(t *testing.T, dir string) { loop(t, dir, "a/self", ".") },
			patterns: []string{"**/*.crt"},
			want:     []string{"a/b/c.crt OK leaf:leaf"},
		},
		{
			name:     "symlink to an ancestor",
			setup:    func(t *testing.T, dir string) { loop(t, dir, "a/b/top", "../..") },
			patterns: []string{"**/*.crt"},
			want:     []string{"a/b/c.crt OK leaf:leaf"},
		},
		{
			name: "dangling symlink",
			setup: func(t *testing.T, dir string) {
				symlink(t, "gone.pem", filepath.Join(dir, "tls.crt"))
			},
			patterns:   []string{"*.crt"},
			want:       []string{"tls.crt UNREADABLE"},
			wantDetail: "points to a missing file",
		},
		{
			name: "symlink to itself",
			setup: func(t *testing.T, dir string) {
				symlink(t, "tls.crt", filepath.Join(dir, "tls.crt"))
			},
			patterns:   []string{"*.crt"},
			want:       []string{"tls.crt UNREADABLE"},
			wantDetail: "too many levels of symbolic links",
		},
		{
			name:       "directory named literally",
			setup:      func(t *testing.T, dir string) { put(t, dir, "certs/a.crt", leaf) },
			patterns:   []string{"certs"},
			want:       []string{"certs UNREADABLE"},
			wantDetail: "is a directory",
		},
		{
			name: "FIFO is not opened",
			setup: func(t *testing.T, dir string) {
				if err := syscall.Mkfifo(filepath.Join(dir, "pipe.crt"), 0o600); err != nil {
					t.Fatal(err)
				}
			},
			patterns:   []string{"*.crt"},
			want:       []string{"pipe.crt UNREADABLE"},
			wantDetail: "not a regular file",
		},
		{
			name: "file without read permission",
			setup: func(t *testing.T, dir string) {
				put(t, dir, "a.crt", leaf)
				if err := os.Chmod(put(t, dir, "b.crt", leaf), 0); err != nil {
					t.Fatal(err)
				}
			},
			patterns:   []string{"*.crt"},
			want:       []string{"a.crt OK leaf:leaf", "b.crt UNREADABLE"},
			wantDetail: "permission denied",
			asNonRoot:  true,
		},
		{
			name: "directory without read permission",
			setup: func(t *testing.T, dir string) {
				put(t, dir, "a.crt", leaf)
				put(t, dir, "locked/b.crt", leaf)
				if err := os.Chmod(filepath.Join(dir, "locked"), 0); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = os.Chmod(filepath.Join(dir, "locked"), 0o755) })
			},
			patterns:   []string{"**/*.crt"},
			want:       []string{"a.crt OK leaf:leaf", "locked UNREADABLE"},
			wantDetail: "permission denied",
			asNonRoot:  true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.asNonRoot && os.Geteuid() == 0 {
				t.Skip("running as root, which ignores permission bits; the symlink, directory and FIFO cases cover UNREADABLE")
			}
			dir := t.TempDir()
			tc.setup(t, dir)
			res := read(NewFileReader(), dir, tc.patterns...)
			if got := summary(dir, res.Files); !slices.Equal(got, tc.want) {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
			if d := details(res.Files); !strings.Contains(d, tc.wantDetail) {
				t.Errorf("details %q do not say %q", d, tc.wantDetail)
			}
		})
	}
}

// fileCase is a certificate file that changes between two reads, or during one.
type fileCase struct {
	dir, pattern string
	swap         func(t testing.TB, data []byte) // puts new content in place
}

// plainFile is dir/tls.crt, replaced by renaming a new file over it.
func plainFile(t testing.TB, data []byte) fileCase {
	dir := t.TempDir()
	put(t, dir, "tls.crt", data)
	return fileCase{dir: dir, pattern: "tls.crt", swap: func(t testing.TB, data []byte) { replace(t, dir, "tls.crt", data) }}
}

// inPlaceFile is dir/tls.crt, rewritten through the same inode.
func inPlaceFile(t testing.TB, data []byte) fileCase {
	fc := plainFile(t, data)
	fc.swap = func(t testing.TB, data []byte) {
		if err := os.WriteFile(filepath.Join(fc.dir, "tls.crt"), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return fc
}

func k8sFile(t testing.TB, data []byte) fileCase {
	dir := t.TempDir()
	k8sSecret(t, dir, "v1", map[string][]byte{"tls.crt": data})
	return fileCase{dir: dir, pattern: "*.crt", swap: func(t testing.TB, data []byte) {
		k8sSecret(t, dir, "v2", map[string][]byte{"tls.crt": data})
		if err := os.RemoveAll(filepath.Join(dir, "..v1")); err != nil {
			t.Fatal(err)
		}
	}}
}

func certbotFile(t testing.TB, data []byte) fileCase {
	dir := t.TempDir()
	certbot(t, dir, 1, data)
	return fileCase{dir: dir, pattern: "live/*/fullchain.pem", swap: func(t testing.TB, data []byte) { certbot(t, dir, 2, data) }}
}

func TestReadSeesChanges(t *testing.T) {
	c := chain()
	a, b := c.leaf.PEM(), c.leafB.PEM()
	remove := func(fc fileCase) func(testing.TB, []byte) {
		return func(t testing.TB, _ []byte) {
			if err := os.Remove(filepath.Join(fc.dir, fc.pattern)); err != nil {
				t.Fatal(err)
			}
		}
	}
	truncate := func(fc fileCase) func(testing.TB, []byte) {
		return func(t testing.TB, _ []byte) {
			if err := os.Truncate(filepath.Join(fc.dir, fc.pattern), 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	cases := []struct {
		name   string
		file   func(testing.TB, []byte) fileCase
		change func(fileCase) func(testing.TB, []byte) // nil: the file's own swap
		want   string
	}{
		{"replaced by rename", plainFile, nil, "OK leaf:leafB"},
		{"rewritten in place", inPlaceFile, nil, "OK leaf:leafB"},
		{"truncated", plainFile, truncate, "NO_CERTIFICATE"},
		{"removed", plainFile, remove, "NO_MATCH"},
		{"kubernetes ..data swapped", k8sFile, nil, "OK leaf:leafB"},
		{"certbot renewal", certbotFile, nil, "OK leaf:leafB"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fc := tc.file(t, a)
			r := NewFileReader()
			before := read(r, fc.dir, fc.pattern)
			if len(before.Files) != 1 || !strings.HasSuffix(summary(fc.dir, before.Files)[0], "OK leaf:leaf") {
				t.Fatalf("before the change: %q", summary(fc.dir, before.Files))
			}
			change := fc.swap
			if tc.change != nil {
				change = tc.change(fc)
			}
			change(t, b)
			after := read(r, fc.dir, fc.pattern)
			if len(after.Files) != 1 || !strings.HasSuffix(summary(fc.dir, after.Files)[0], " "+tc.want) {
				t.Errorf("after the change: %q, want %q", summary(fc.dir, after.Files), tc.want)
			}
			assertCacheWithin(t, r, after)
		})
	}
}

// assertCacheWithin checks that the cache holds only files the result read.
func assertCacheWithin(t *testing.T, r *FileReader, res *FileResult) {
	t.Helper()
	for p := range r.cache {
		if !slices.ContainsFunc(res.Files, func(f FileState) bool {
			return f.Path == p && f.Reason != probe.ReasonGlobEmpty && f.Reason != probe.ReasonUnreadable
		}) {
			t.Errorf("cache still holds %s", p)
		}
	}
}

func TestReadChangeDuringRead(t *testing.T) {
	c := chain()
	a, b := c.leaf.PEM(), c.leafB.PEM()
	bigger := testpki.Bundle(c.leafB, c.inter)
	cases := []struct {
		name    string
		file    func(testing.TB, []byte) fileCase
		primed  bool                                   // read once before, so an old result is cached
		during  func(t testing.TB, fc fileCase, n int) // runs after the n-th read of the file, from 1
		want    string                                 // the read during which the file changed
		wantNow string                                 // the next read
	}{
		{
			name:    "renamed over: the open file is read whole",
			file:    plainFile,
			during:  func(t testing.TB, fc fileCase, n int) { once(n, func() { fc.swap(t, b) }) },
			want:    "OK leaf:leaf",
			wantNow: "OK leaf:leafB",
		},
		{
			name:    "kubernetes swap: the open file is read whole",
			file:    k8sFile,
			during:  func(t testing.TB, fc fileCase, n int) { once(n, func() { fc.swap(t, b) }) },
			want:    "OK leaf:leaf",
			wantNow: "OK leaf:leafB",
		},
		{
			name:    "rewritten in place: read again",
			file:    inPlaceFile,
			during:  func(t testing.TB, fc fileCase, n int) { once(n, func() { fc.swap(t, bigger) }) },
			want:    "OK leaf:leafB intermediate:inter",
			wantNow: "OK leaf:leafB intermediate:inter",
		},
		{
			name:    "truncated: read again",
			file:    inPlaceFile,
			during:  func(t testing.TB, fc fileCase, n int) { once(n, func() { fc.swap(t, nil) }) },
			want:    "NO_CERTIFICATE",
			wantNow: "NO_CERTIFICATE",
		},
		{
			name:    "never still, nothing known: unreadable for now",
			file:    inPlaceFile,
			during:  func(t testing.TB, fc fileCase, n int) { fc.swap(t, [][]byte{b, bigger}[n%2]) },
			want:    "UNREADABLE",
			wantNow: "OK leaf:leafB intermediate:inter",
		},
		{
			name:    "never still, old result known: the old result",
			file:    inPlaceFile,
			primed:  true,
			during:  func(t testing.TB, fc fileCase, n int) { fc.swap(t, [][]byte{b, bigger}[n%2]) },
			want:    "OK leaf:leaf",
			wantNow: "OK leaf:leafB intermediate:inter",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fc := tc.file(t, a)
			r := NewFileReader()
			if tc.primed {
				read(r, fc.dir, fc.pattern)
				fc.swap(t, b) // something to re-read
			}
			n := 0
			r.afterRead = func(string) { n++; tc.during(t, fc, n) }
			got := summary(fc.dir, read(r, fc.dir, fc.pattern).Files)
			r.afterRead = nil
			now := summary(fc.dir, read(r, fc.dir, fc.pattern).Files)
			if len(got) != 1 || !strings.HasSuffix(got[0], " "+tc.want) {
				t.Errorf("during the change: %q, want %q", got, tc.want)
			}
			if len(now) != 1 || !strings.HasSuffix(now[0], " "+tc.wantNow) {
				t.Errorf("next read: %q, want %q", now, tc.wantNow)
			}
		})
	}
}

func once(n int, f func()) {
	if n == 1 {
		f()
	}
}

// TestReadWhileRenamed races real renames against reads: every result is
// one version or the other, never a mix and never an error.
func TestReadWhileRenamed(t *testing.T) {
	c := chain()
	versions := [][]byte{testpki.Bundle(c.leaf, c.inter), testpki.Bundle(c.leafB, c.inter, c.root)}
	fc := plainFile(t, versions[0])
	done := make(chan struct{})
	go func() { // writes directly: t.Fatal belongs to the test's goroutine
		defer close(done)
		tmp, dst := filepath.Join(fc.dir, "new"), filepath.Join(fc.dir, fc.pattern)
		for i := range 300 {
			if err := os.WriteFile(tmp, versions[i%2], 0o600); err != nil {
				t.Error(err)
				return
			}
			if err := os.Rename(tmp, dst); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	r := NewFileReader()
	for reads := 0; ; reads++ {
		select {
		case <-done:
			if reads == 0 {
				t.Fatal("no read ran while the file was being replaced")
			}
			return
		default:
		}
		got := summary(fc.dir, read(r, fc.dir, fc.pattern).Files)
		want := []string{"tls.crt OK leaf:leaf intermediate:inter", "tls.crt OK leaf:leafB intermediate:inter root:root"}
		if len(got) != 1 || !slices.Contains(want, got[0]) {
			t.Fatalf("read %d: %q", reads, got)
		}
	}
}

func TestReadCache(t *testing.T) {
	c := chain()
	// Pad to one size, so that only the inode and the content differ.
	a, b := c.leaf.PEM(), c.leafB.PEM()
	size := max(len(a), len(b))
	a = append(a, bytes.Repeat([]byte("\n"), size-len(a))...)
	b = append(b, bytes.Repeat([]byte("\n"), size-len(b))...)

	dir := t.TempDir()
	p := put(t, dir, "tls.crt", a)
	put(t, dir, "other.crt", a)
	r := NewFileReader()
	step := func(what string, wantReads int, want ...string) {
		t.Helper()
		got := summary(dir, read(r, dir, "*.crt").Files)
		if !slices.Equal(got, want) || r.reads != wantReads {
			t.Fatalf("%s: got %q after %d reads, want %q after %d", what, got, r.reads, want, wantReads)
		}
	}
	step("first read", 2, "other.crt OK leaf:leaf", "tls.crt OK leaf:leaf")
	step("unchanged files are not read again", 2, "other.crt OK leaf:leaf", "tls.crt OK leaf:leaf")

	// Same inode, size and mtime: by contract the file counts as unchanged.
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	backdate(t, p)
	step("same inode, size and mtime", 2, "other.crt OK leaf:leaf", "tls.crt OK leaf:leaf")

	// A new inode with the same size and mtime is a change.
	replace(t, dir, "tls.crt", b)
	step("new inode", 3, "other.crt OK leaf:leaf", "tls.crt OK leaf:leafB")

	// A file modified just now may change again within the same mtime tick.
	if err := os.WriteFile(p, a, 0o600); err != nil {
		t.Fatal(err)
	}
	step("fresh file", 4, "other.crt OK leaf:leaf", "tls.crt OK leaf:leaf")
	step("fresh file is read again", 5, "other.crt OK leaf:leaf", "tls.crt OK leaf:leaf")
	backdate(t, p)
	step("settled file", 6, "other.crt OK leaf:leaf", "tls.crt OK leaf:leaf")
	step("settled file is cached", 6, "other.crt OK leaf:leaf", "tls.crt OK leaf:leaf")
}

func TestReadCancelled(t *testing.T) {
	dir := t.TempDir()
	for i := range 3 {
		put(t, dir, fmt.Sprintf("%d.crt", i), chain().leaf.PEM())
	}
	g := config.FileGroup{Name: "g", Paths: []string{filepath.Join(dir, "*.crt")}}
	r := NewFileReader()

	ctx, cancel := context.WithCancel(context.Background())
	r.afterRead = func(string) { cancel() }
	if res := r.Read(ctx, g); len(res.Files) != 1 {
		t.Errorf("cancelled after the first file, got %q", summary(dir, res.Files))
	}
	r.afterRead = nil
	if res := r.Read(context.Background(), g); len(res.Files) != 3 || r.reads != 3 {
		t.Fatalf("next read: %q after %d reads", summary(dir, res.Files), r.reads)
	}
	if res := r.Read(ctx, g); len(res.Files) != 0 || len(r.cache) != 3 {
		t.Errorf("cancelled before it started: %q, %d cached", summary(dir, res.Files), len(r.cache))
	}
}

func FuzzParseCertificates(f *testing.F) {
	if p7, err := pkcs7.DegenerateCertificate(chain().leaf.Cert.Raw); err == nil {
		f.Add(p7)
		f.Add(pem.EncodeToMemory(&pem.Block{Type: "PKCS7", Bytes: p7}))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		certs, err := ParseCertificates(data)
		if (err == nil) == (len(certs) == 0) {
			t.Fatalf("%d certificates with error %v", len(certs), err)
		}
		for _, c := range certs {
			ci := probe.CertInfoOf(c, fileRole(c))
			if ci.FingerprintSHA256 == "" || ci.Role == "" {
				t.Fatalf("incomplete %+v", ci)
			}
		}
		if err == nil {
			return
		}
		for _, q := range quoted.FindAllString(err.Error(), -1) {
			if q != `"…"` {
				t.Fatalf("error %q quotes the data", err)
			}
		}
	})
}

// certDir writes n certificate files, dated so the reader may cache them.
func certDir(b *testing.B, n int) config.FileGroup {
	dir := b.TempDir()
	bundle := testpki.Bundle(chain().leaf, chain().inter)
	for i := range n {
		put(b, dir, fmt.Sprintf("%03d/%d.pem", i%100, i), bundle)
	}
	return config.FileGroup{Name: "g", Paths: []string{filepath.Join(dir, "**", "*.pem")}}
}

var fileBenchSizes = []int{1000, 10000}

// BenchmarkFileRescan re-reads a group whose files did not change: the
// kernel's read counters show that no file is read, only stat'ed.
func BenchmarkFileRescan(b *testing.B) {
	for _, n := range fileBenchSizes {
		b.Run(fmt.Sprintf("files=%d", n), func(b *testing.B) {
			g := certDir(b, n)
			r := NewFileReader()
			r.Read(context.Background(), g)
			count := readCounters(b)
			for b.Loop() {
				r.Read(context.Background(), g)
			}
			count(n)
			if r.reads != n {
				b.Fatalf("%d files read, want %d: unchanged files were read again", r.reads, n)
			}
		})
	}
}

func BenchmarkFileFirstRead(b *testing.B) {
	for _, n := range fileBenchSizes {
		b.Run(fmt.Sprintf("files=%d", n), func(b *testing.B) {
			g := certDir(b, n)
			count := readCounters(b)
			for b.Loop() {
				if res := NewFileReader().Read(context.Background(), g); len(res.Files) != n {
					b.Fatalf("%d files", len(res.Files))
				}
			}
			count(n)
		})
	}
}

// readCounters reports time, read(2) calls and bytes read per file from
// /proc/self/io: what the process asked of the kernel, page cache or not.
func readCounters(b *testing.B) func(files int) {
	start := procIO(b)
	return func(files int) {
		end, per := procIO(b), float64(b.N*files)
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/per, "ns/file")
		b.ReportMetric(float64(end["syscr"]-start["syscr"])/per, "reads/file")
		b.ReportMetric(float64(end["rchar"]-start["rchar"])/per, "read-bytes/file")
	}
}

func procIO(b *testing.B) map[string]int64 {
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		b.Fatalf("reading I/O counters: %v", err)
	}
	out := map[string]int64{}
	for line := range strings.SplitSeq(string(data), "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			b.Fatalf("/proc/self/io %q: %v", line, err)
		}
		out[k] = n
	}
	return out
}
