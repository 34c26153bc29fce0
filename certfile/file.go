// Package certfile reads certificate and key files: globs, formats,
// change detection, private-key pairing and permissions. It returns plain
// results, as probe does for endpoints.
package certfile

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

// FileResult is the outcome of reading one file group.
type FileResult struct {
	Time  time.Time
	Files []FileState
}

// FileState is one matched path (or one glob that matched nothing).
type FileState struct {
	Path         string
	Reason       probe.Reason
	Detail       string
	Certificates []probe.CertInfo
	Limits       []probe.LimitReached // what was left out of Certificates
}

// maxFileSize bounds what is read of one file: bundles are kilobytes, and a
// glob that catches a log or an image must not cost memory.
const maxFileSize = 1 << 20

// racyWindow: a file modified this recently can change again within the
// filesystem's timestamp granularity without its mtime moving, so its result
// is reported but not cached (git calls such entries "racily clean"). A file
// dated in the future is never cached either.
const racyWindow = 2 * time.Second

// readAttempts bounds the re-reads of a file that changes while it is read.
const readAttempts = 3

// ErrNoCertificate is returned by ParseCertificates when the data holds no
// certificate at all; the file reader reports it as NO_CERTIFICATE.
var ErrNoCertificate = errors.New("no certificate found")

var pemCertBegin = []byte("-----BEGIN CERTIFICATE-----")

// FileReader reads one file group. It remembers what it parsed so that files
// whose target (device, inode), mtime and size are unchanged are not read
// again. Results share the cached probe.CertInfo slices: treat them as read-only.
type FileReader struct {
	mu    sync.Mutex
	cache map[string]*fileEntry // by matched path

	reads     int               // files opened and parsed, for tests and benchmarks
	afterRead func(path string) // test hook: runs between reading a file and re-checking it
}

type fileEntry struct {
	info    os.FileInfo // the target as it was when read
	perFile int         // limits.certificates_per_file it was read with
	state   FileState
}

// NewFileReader returns a reader with an empty cache.
func NewFileReader() *FileReader {
	return &FileReader{cache: map[string]*fileEntry{}}
}

// Read expands the group's globs and reports every matched file, and every
// pattern that matched nothing. Problems are states, never errors. When ctx
// is cancelled, Read returns the files done so far and keeps its cache; the
// caller should discard that partial result.
func (r *FileReader) Read(ctx context.Context, g config.FileGroup) *FileResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	res := &FileResult{Time: time.Now()}
	reported := make(map[string]bool, len(r.cache))
	add := func(st FileState) {
		if !reported[st.Path] {
			reported[st.Path] = true
			res.Files = append(res.Files, st)
		}
	}
	matched := make(map[string]bool, len(r.cache))
	files, lim := fileSet{}, limitsOf(g)
	for _, pattern := range g.Paths {
		paths, states := expand(ctx, pattern, lim)
		if ctx.Err() != nil {
			return res
		}
		for _, p := range paths {
			if ctx.Err() != nil {
				return res
			}
			if matched[p] {
				continue
			}
			info, err := os.Stat(p)
			if err == nil && files.seen(info) {
				continue
			}
			matched[p] = true
			add(r.readFile(p, info, err, lim))
		}
		for _, st := range states {
			add(st)
		}
	}
	if ctx.Err() != nil {
		return res
	}
	for p := range r.cache {
		if !matched[p] {
			delete(r.cache, p)
		}
	}
	return res
}

// readFile reports one path, from the cache when its target (info, or the
// error stating it) is unchanged.
func (r *FileReader) readFile(p string, info os.FileInfo, err error, lim config.Limits) FileState {
	if err != nil {
		delete(r.cache, p)
		return unreadable(p, statError(p, err))
	}
	if !info.Mode().IsRegular() {
		delete(r.cache, p)
		return unreadable(p, notRegular(p, info))
	}
	if e := r.cache[p]; e != nil && sameFile(e.info, info) && e.perFile == lim.CertificatesPerFile {
		return e.state
	}
	return r.load(p, lim.CertificatesPerFile)
}

// load reads and parses p, again if the file changed while it was read, so
// that the result is never a mix of two versions.
func (r *FileReader) load(p string, perFile int) FileState {
	for range readAttempts {
		st, info, stable := r.readOnce(p, perFile)
		if !stable {
			continue
		}
		if info != nil && time.Since(info.ModTime()) >= racyWindow {
			r.cache[p] = &fileEntry{info: info, perFile: perFile, state: st}
		} else {
			delete(r.cache, p)
		}
		return st
	}
	// Still changing: the old result is a consistent one, if there is one.
	if e := r.cache[p]; e != nil {
		return e.state
	}
	return unreadable(p, fmt.Errorf("reading %s: changed while being read %d times; will retry", p, readAttempts))
}

// readOnce reads p through one open file. stable is false when the file
// changed during the read. info is nil for states that must not be cached.
func (r *FileReader) readOnce(p string, perFile int) (st FileState, info os.FileInfo, stable bool) {
	// O_NONBLOCK: a FIFO swapped in after the stat must not block the open.
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return unreadable(p, err), nil, true
	}
	defer f.Close()
	before, err := f.Stat()
	if err != nil {
		return unreadable(p, fmt.Errorf("reading %s: %w", p, err)), nil, true
	}
	if !before.Mode().IsRegular() {
		return unreadable(p, notRegular(p, before)), nil, true
	}
	if before.Size() > maxFileSize {
		return tooLarge(p, before.Size()), before, true
	}
	data, err := readLimited(f, before.Size())
	if err != nil {
		return unreadable(p, fmt.Errorf("reading %s: %w", p, err)), nil, true
	}
	defer clear(data) // the file may be a key read by mistake
	r.reads++
	if r.afterRead != nil {
		r.afterRead(p)
	}
	after, err := f.Stat()
	if err != nil {
		return unreadable(p, fmt.Errorf("reading %s: %w", p, err)), nil, true
	}
	if !sameFile(before, after) {
		return FileState{}, nil, false
	}
	if len(data) > maxFileSize {
		return tooLarge(p, int64(len(data))), nil, true
	}
	return parseState(p, data, perFile), after, true
}

// readLimited reads at most maxFileSize+1 bytes, so a file that is larger
// than it claims (procfs, or growing) is caught without reading it whole.
func readLimited(f *os.File, size int64) ([]byte, error) {
	buf := bytes.NewBuffer(make([]byte, 0, size+bytes.MinRead))
	_, err := buf.ReadFrom(io.LimitReader(f, maxFileSize+1))
	return buf.Bytes(), err
}

func sameFile(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.ModTime().Equal(b.ModTime()) && a.Size() == b.Size()
}

func statError(p string, err error) error {
	if li, lerr := os.Lstat(p); lerr == nil && li.Mode()&fs.ModeSymlink != 0 && errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("symlink %s points to a missing file: %w", p, err)
	}
	return err
}

func notRegular(p string, info os.FileInfo) error {
	if info.IsDir() {
		return fmt.Errorf("%s is a directory", p)
	}
	return fmt.Errorf("%s is not a regular file (%s)", p, info.Mode().Type())
}

func unreadable(p string, err error) FileState {
	return FileState{Path: p, Reason: probe.ReasonUnreadable, Detail: err.Error()}
}

func tooLarge(p string, size int64) FileState {
	return FileState{Path: p, Reason: probe.ReasonTooLarge,
		Detail: fmt.Sprintf("%s is %d bytes, more than the %d read of a certificate file", p, size, maxFileSize)}
}

func parseState(p string, data []byte, perFile int) FileState {
	certs, err := ParseCertificates(data)
	var format *formatError
	switch {
	case errors.As(err, &format):
		return FileState{Path: p, Reason: format.reason, Detail: fmt.Sprintf("parsing %s: %v", p, err)}
	case errors.Is(err, ErrNoCertificate):
		return FileState{Path: p, Reason: probe.ReasonNoCertificate, Detail: fmt.Sprintf("parsing %s: %v", p, err)}
	case err != nil:
		return FileState{Path: p, Reason: probe.ReasonParseError, Detail: fmt.Sprintf("parsing %s: %v", p, err)}
	}
	st := FileState{Path: p, Certificates: fileCertInfos(certs)}
	if perFile > 0 && len(st.Certificates) > perFile {
		st.Limits = append(st.Limits, probe.LimitReached{Limit: probe.LimitCertificatesPerFile,
			Detail: fmt.Sprintf("%s holds %d certificates; the first %d are exported", p, len(st.Certificates), perFile)})
		st.Certificates = st.Certificates[:perFile:perFile]
	}
	return st
}

// fileCertInfos drops repeated certificates and gives each its role by what
// it is, since bundles come in any order.
func fileCertInfos(certs []*x509.Certificate) []probe.CertInfo {
	out := make([]probe.CertInfo, 0, len(certs))
	seen := map[string]bool{}
	for _, c := range certs {
		ci := probe.CertInfoOf(c, fileRole(c))
		ci.Findings = probe.X509Findings(c, ci.Role)
		if !seen[ci.FingerprintSHA256] {
			seen[ci.FingerprintSHA256] = true
			out = append(out, ci)
		}
	}
	return out
}

// fileRole: a CA that issued itself is a root. The self-signature is not
// checked, as old roots signed with SHA-1 would fail it; a cross-signed CA
// has another issuer and a key rollover certificate another authority key.
func fileRole(c *x509.Certificate) string {
	switch {
	case !c.IsCA:
		return probe.RoleLeaf
	case bytes.Equal(c.RawSubject, c.RawIssuer) &&
		(len(c.AuthorityKeyId) == 0 || bytes.Equal(c.AuthorityKeyId, c.SubjectKeyId)):
		return probe.RoleRoot
	}
	return probe.RoleIntermediate
}

// ParseCertificates returns every certificate of a PEM bundle, or of DER
// data holding one certificate or several concatenated. Other PEM blocks,
// such as private keys, are skipped and their decoded bytes cleared. No
// certificate at all wraps ErrNoCertificate; any other error means a
// certificate is corrupt. Errors never quote the data.
func ParseCertificates(data []byte) ([]*x509.Certificate, error) {
	if bytes.Contains(data, []byte("-----BEGIN ")) {
		return parsePEM(data)
	}
	return parseDER(data)
}

func parsePEM(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	var others []string // kinds of the other blocks, for the message
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type == "PKCS7" || b.Type == "CERTIFICATES" {
			p7, err := pkcs7Certificates(b.Bytes)
			if err != nil {
				return nil, err
			}
			certs = append(certs, p7...)
			continue
		}
		if b.Type != "CERTIFICATE" {
			if kind := blockKind(b.Type); !slices.Contains(others, kind) {
				others = append(others, kind)
			}
			clear(b.Bytes)
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, redacted{fmt.Sprintf("PEM certificate %d", len(certs)+1), err}
		}
		certs = append(certs, c)
	}
	if n := bytes.Count(data, pemCertBegin); n > len(certs) {
		return nil, fmt.Errorf("%d of %d CERTIFICATE blocks are not valid PEM", n-len(certs), n)
	}
	if len(certs) == 0 {
		if len(others) == 0 {
			return nil, fmt.Errorf("%w: no complete PEM block", ErrNoCertificate)
		}
		if err := pemBlockError(others); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w, only PEM blocks of kind %s", ErrNoCertificate, strings.Join(others, ", "))
	}
	return certs, nil
}

// blockKind names a PEM block in messages from a fixed vocabulary, since the
// type line is text from the file.
func blockKind(typ string) string {
	for _, k := range []struct{ marker, kind string }{
		{"PRIVATE KEY", "private key"}, {"PUBLIC KEY", "public key"},
		{"CERTIFICATE REQUEST", "certificate request"}, {"CRL", "CRL"}, {"PARAMETERS", "parameters"},
	} {
		if strings.Contains(typ, k.marker) {
			return k.kind
		}
	}
	return "other"
}

func parseDER(data []byte) ([]*x509.Certificate, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("%w: the file is empty", ErrNoCertificate)
	}
	if err := classifyDER(data); err != nil {
		return nil, err
	}
	if isPKCS7(data) {
		return pkcs7Certificates(data)
	}
	certs, err := x509.ParseCertificates(data)
	if err != nil {
		return nil, redacted{"DER", err}
	}
	return certs, nil
}

// quoted matches the %q strings that x509 puts in some errors (a URI, a name
// constraint): text from the file, which details never repeat.
var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

// redacted is a parse error whose message leaves out quoted file text.
type redacted struct {
	what string
	err  error
}

func (e redacted) Error() string {
	return e.what + ": " + quoted.ReplaceAllString(e.err.Error(), `"…"`)
}

func (e redacted) Unwrap() error { return e.err }

// expand lists the files a pattern matches, or returns the state that says
// why there are none. Directories that cannot be listed are UNREADABLE.
func expand(ctx context.Context, pattern string, lim config.Limits) ([]string, []FileState) {
	clean := filepath.Clean(pattern)
	if !strings.ContainsAny(clean, `*?[{\`) {
		if _, err := os.Lstat(clean); errors.Is(err, fs.ErrNotExist) {
			return nil, []FileState{{Path: pattern, Reason: probe.ReasonGlobEmpty, Detail: err.Error()}}
		}
		return []string{clean}, nil
	}
	base, rel := doublestar.SplitPattern(filepath.ToSlash(clean))
	g := &globFS{ctx: ctx, root: base, fsys: os.DirFS(base), dirs: map[fileID]string{}, maxEntries: lim.GlobEntries}
	matches, err := doublestar.Glob(g, rel, doublestar.WithFilesOnly())
	if err != nil {
		return nil, []FileState{{Path: pattern, Reason: probe.ReasonGlobEmpty, Detail: fmt.Sprintf("pattern %q: %v", pattern, err)}}
	}
	if g.capped {
		g.failed = append(g.failed, FileState{Path: pattern, Reason: probe.ReasonLimitReached, Detail: fmt.Sprintf(
			"the walk listed %d directory entries, limits.glob_entries; files past them are not read", g.maxEntries)})
	}
	if n := lim.GlobMatches; n > 0 && len(matches) > n {
		g.failed = append(g.failed, FileState{Path: pattern, Reason: probe.ReasonLimitReached, Detail: fmt.Sprintf(
			"%d files match, more than limits.glob_matches (%d); the first %d are read", len(matches), n, n)})
		matches = matches[:n]
	}
	paths := make([]string, len(matches))
	for i, m := range matches {
		paths[i] = filepath.FromSlash(path.Join(base, m))
	}
	states := g.failed
	if len(paths) == 0 && len(states) == 0 {
		states = []FileState{{Path: pattern, Reason: probe.ReasonGlobEmpty, Detail: "no file matches"}}
	}
	return paths, states
}

// globFS is the file system doublestar walks. It makes the walk stop on
// cancellation and at limits.glob_entries, lists each directory through one
// path only, hides Kubernetes' atomic-writer directories, and keeps the
// errors doublestar would ignore.
type globFS struct {
	ctx        context.Context
	root       string
	fsys       fs.FS
	dirs       map[fileID]string // directories by device and inode, and the path that lists them
	entries    int               // directory entries listed so far
	maxEntries int
	capped     bool
	failed     []FileState
}

func (g *globFS) Open(name string) (fs.File, error) { return g.fsys.Open(name) }

func (g *globFS) Stat(name string) (fs.FileInfo, error) { return fs.Stat(g.fsys, name) }

func (g *globFS) ReadDir(name string) ([]fs.DirEntry, error) {
	if err := g.ctx.Err(); err != nil {
		return nil, err
	}
	if g.capped {
		return nil, nil
	}
	if info, err := fs.Stat(g.fsys, name); err == nil && g.reachedBefore(name, info) {
		return nil, nil
	}
	entries, err := fs.ReadDir(g.fsys, name)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		dir := filepath.Join(g.root, filepath.FromSlash(name))
		g.failed = append(g.failed, unreadable(dir, fmt.Errorf("listing %s: %w", dir, err)))
	}
	if g.maxEntries > 0 && g.entries+len(entries) > g.maxEntries {
		entries, g.capped = entries[:g.maxEntries-g.entries], true
	}
	g.entries += len(entries)
	// A Kubernetes secret or configmap mount holds the real files in
	// ..<timestamp> behind a ..data symlink, and the names users see link
	// into it: without this every certificate would be reported three times.
	kept := entries[:0]
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "..") {
			kept = append(kept, e)
		}
	}
	return kept, err
}

// reachedBefore reports whether the directory was already listed through
// another path: a symlink to an ancestor (a loop) or one of several links to
// the same directory (a DAG, whose paths double at every level). doublestar
// may list one path more than once, for different parts of a pattern.
func (g *globFS) reachedBefore(dir string, info os.FileInfo) bool {
	id, ok := idOf(info)
	if !ok {
		return false
	}
	if first, seen := g.dirs[id]; seen {
		return first != dir
	}
	g.dirs[id] = dir
	return false
}

// fileID is a file's device and inode.
type fileID struct{ dev, ino uint64 }

func idOf(info os.FileInfo) (fileID, bool) {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{uint64(st.Dev), st.Ino}, true //nolint:unconvert // Dev is int32 on some platforms
}

// fileSet remembers the files a group reported, by device and inode.
type fileSet map[fileID]bool

// seen reports whether info is a regular file already reported through
// another path (a hard link or a symlink), and remembers it otherwise.
func (s fileSet) seen(info os.FileInfo) bool {
	if !info.Mode().IsRegular() {
		return false
	}
	id, ok := idOf(info)
	if !ok {
		return false
	}
	if s[id] {
		return true
	}
	s[id] = true
	return false
}

// limitsOf returns the group's limits, or the defaults for a group built
// in code without them.
func limitsOf(g config.FileGroup) config.Limits {
	if g.Limits == (config.Limits{}) {
		return config.DefaultLimits
	}
	return g.Limits
}
