package certfile

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
	"github.com/mcpcert/mcp_cert_exporter/internal/tooltest"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

// readWith reads patterns under dir as one group with the given limits.
func readWith(lim config.Limits, dir string, patterns ...string) *FileResult {
	g := config.FileGroup{Name: "g", Limits: lim}
	for _, p := range patterns {
		g.Paths = append(g.Paths, filepath.Join(dir, p))
	}
	return NewFileReader().Read(context.Background(), g)
}

// symlinkDAG makes d0 … d<levels> where each level holds two symlinks to
// the next: 2^levels paths lead to the one certificate at the bottom.
func symlinkDAG(t *testing.T, dir string, levels int, cert []byte) {
	for i := range levels {
		if err := os.MkdirAll(filepath.Join(dir, fmt.Sprintf("d%d", i)), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, link := range []string{"a", "b"} {
			symlink(t, filepath.Join("..", fmt.Sprintf("d%d", i+1)), filepath.Join(dir, fmt.Sprintf("d%d", i), link))
		}
	}
	put(t, dir, fmt.Sprintf("d%d/tls.pem", levels), cert)
}

// A symlink DAG of 25 levels has 2^25 paths to its one file. Each
// directory is listed once, so the walk lists 2 entries a level and reports
// the file once; before, 16 levels took 31 s and 25 never ended.
func TestSymlinkDAGIsWalkedOnce(t *testing.T) {
	dir := t.TempDir()
	symlinkDAG(t, dir, 25, chain().leaf.PEM())
	// A root-like pattern over the whole tree, and one through the DAG.
	for _, pattern := range []string{"**/*.pem", "d0/**/*.pem"} {
		res := readWith(config.DefaultLimits, dir, pattern)
		if len(res.Files) != 1 || res.Files[0].Reason != probe.ReasonNone {
			t.Fatalf("%s: got %q, want the certificate once", pattern, summary(dir, res.Files))
		}
	}
	g := &globFS{ctx: context.Background(), fsys: os.DirFS(dir), dirs: map[fileID]string{}, maxEntries: 1 << 20}
	if _, err := g.ReadDir("d0"); err != nil {
		t.Fatal(err)
	}
	if _, err := g.ReadDir("d0/b"); err != nil {
		t.Fatal(err)
	}
	if entries, _ := g.ReadDir("d0/a"); len(entries) != 0 || g.entries != 4 {
		t.Errorf("d0/a, the same directory as d0/b, listed again: %d entries, %d in all", len(entries), g.entries)
	}
}

// Reaching a glob limit is a file error that names the limit; what was
// found within it is still read.
func TestGlobLimitsAreReported(t *testing.T) {
	leaf := chain().leaf.PEM()
	dir := t.TempDir()
	for i := range 30 {
		put(t, dir, fmt.Sprintf("many/%02d.pem", i), testpki.NewCA(fmt.Sprintf("ca%02d", i)).PEM())
		put(t, dir, fmt.Sprintf("deep/%02d/x.txt", i), []byte("x"))
	}
	put(t, dir, "deep/zz.pem", leaf)
	cases := []struct {
		name    string
		limits  func(*config.Limits)
		pattern string
		files   int
		detail  string
	}{
		{"matches", func(l *config.Limits) { l.GlobMatches = 10 }, "many/*.pem", 10, "limits.glob_matches"},
		{"entries", func(l *config.Limits) { l.GlobEntries = 12 }, "deep/**/*.pem", 0, "limits.glob_entries"},
		{"within both", func(l *config.Limits) {}, "many/*.pem", 30, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lim := config.DefaultLimits
			tc.limits(&lim)
			res := readWith(lim, dir, tc.pattern)
			var read int
			var limited []FileState
			for _, f := range res.Files {
				switch f.Reason {
				case probe.ReasonNone:
					read++
				case probe.ReasonLimitReached:
					limited = append(limited, f)
				default:
					t.Errorf("unexpected %s %s", f.Path, f.Reason)
				}
			}
			if read != tc.files {
				t.Errorf("read %d files, want %d", read, tc.files)
			}
			switch {
			case tc.detail == "" && len(limited) > 0:
				t.Errorf("limit reported within the limits: %q", limited[0].Detail)
			case tc.detail != "" && (len(limited) != 1 || !strings.Contains(limited[0].Detail, tc.detail) ||
				limited[0].Path != filepath.Join(dir, tc.pattern)):
				t.Errorf("limit states %+v, want one for the pattern naming %s", limited, tc.detail)
			}
		})
	}
}

// A file reached through several paths (symlink, hard link) is one file.
func TestFileReachedTwiceIsReadOnce(t *testing.T) {
	dir := t.TempDir()
	put(t, dir, "a.pem", chain().leaf.PEM())
	symlink(t, "a.pem", filepath.Join(dir, "b.pem"))
	if err := os.Link(filepath.Join(dir, "a.pem"), filepath.Join(dir, "c.pem")); err != nil {
		t.Fatal(err)
	}
	res := readWith(config.DefaultLimits, dir, "*.pem")
	if got := summary(dir, res.Files); !slices.Equal(got, []string{"a.pem OK leaf:leaf"}) {
		t.Errorf("got %q, want a.pem once", got)
	}
}

// A 1 MiB file holds about 2,500 certificates: only the first
// certificates_per_file are exported, and the cut is reported.
func TestCertificatesPerFileLimit(t *testing.T) {
	var bundle []byte
	for i := range 12 {
		bundle = append(bundle, testpki.NewCA(fmt.Sprintf("ca%02d", i)).PEM()...)
	}
	dir := t.TempDir()
	put(t, dir, "bundle.pem", bundle)
	lim := config.DefaultLimits
	lim.CertificatesPerFile = 5
	f := readWith(lim, dir, "bundle.pem").Files[0]
	if len(f.Certificates) != 5 || len(f.Limits) != 1 || f.Limits[0].Limit != probe.LimitCertificatesPerFile ||
		!strings.Contains(f.Limits[0].Detail, "holds 12 certificates") {
		t.Errorf("got %d certificates, limits %+v; want 5 and certificates_per_file reached", len(f.Certificates), f.Limits)
	}
}

// openssl writes each format as Windows CAs and PKI tools do; each is read,
// or gets its own reason.
func TestFormatsAgreeWithOpenSSL(t *testing.T) {
	openssl := tooltest.Require(t, "openssl")
	c := chain()
	dir := t.TempDir()
	bundle := put(t, dir, "in/bundle.pem", testpki.Bundle(c.leaf, c.inter))
	key := put(t, dir, "in/leaf.key", c.leaf.KeyPEM())
	leaf := put(t, dir, "in/leaf.pem", c.leaf.PEM())
	run := func(out string, args ...string) {
		t.Helper()
		args = append(args, "-out", filepath.Join(dir, out))
		if b, err := exec.Command(openssl, args...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %v: %v\n%s", args, err, b)
		}
	}
	run("bundle.p7b", "crl2pkcs7", "-nocrl", "-certfile", bundle, "-outform", "DER")
	run("bundle.p7c.pem", "crl2pkcs7", "-nocrl", "-certfile", bundle)
	run("leaf.p12", "pkcs12", "-export", "-in", leaf, "-inkey", key, "-passout", "pass:hunter2")
	run("leaf.key.der", "pkey", "-in", key, "-outform", "DER")
	run("leaf.pub.der", "pkey", "-in", key, "-pubout", "-outform", "DER")
	run("leaf.enc.pem", "pkcs8", "-topk8", "-in", key, "-v2", "aes-256-cbc", "-passout", "pass:hunter2")
	run("leaf.enc.der", "pkcs8", "-topk8", "-in", key, "-v2", "aes-256-cbc", "-passout", "pass:hunter2", "-outform", "DER")
	run("leaf.csr.der", "req", "-new", "-key", key, "-subj", "/CN=csr", "-outform", "DER")
	res := readWith(config.DefaultLimits, dir, "*")
	want := []string{
		"bundle.p7b OK leaf:leaf intermediate:inter",
		"bundle.p7c.pem OK leaf:leaf intermediate:inter",
		"leaf.csr.der CSR_FILE",
		"leaf.enc.der KEY_FILE",
		"leaf.enc.pem KEY_FILE",
		"leaf.key.der KEY_FILE",
		"leaf.p12 PKCS12_FILE",
		"leaf.pub.der KEY_FILE",
	}
	if got := summary(dir, res.Files); !slices.Equal(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}
