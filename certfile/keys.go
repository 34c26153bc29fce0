package certfile

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

// KeyResult is the outcome of checking the private keys of a file group.
type KeyResult struct {
	Time    time.Time
	Keys    []KeyState
	Unknown []probe.UnknownCheck // keys that could not be found, read or paired
}

// KeyState is one private key file. Nothing of the key itself is kept.
type KeyState struct {
	Path string
	// InsecurePermissions: readable by group or others, or not a regular
	// file (a symlink to a regular file is fine: Kubernetes mounts use them).
	InsecurePermissions bool
	Mode                fs.FileMode
	// Matches is whether the key belongs to a certificate of Paired; nil
	// when the key could not be read or there is no certificate to pair.
	Matches *bool
	Paired  []string // the certificate files the key was compared with
}

// maxKeySize bounds what is read of a key file; an RSA 16384 key is 13 KB.
const maxKeySize = 64 << 10

// keyNames are the key files looked for next to the certificates when the
// group has no key_paths: foo.key and tls.key, cfssl's foo-key.pem, and
// certbot's privkey.pem (privkey3.pem in archive/).
var keyNames = []string{"*.key", "*-key.pem", "*_key.pem", "key.pem", "privkey*.pem"}

// CheckKeys finds the group's private keys (key_paths and key_pairs, or the
// usual names next to its certificates, or a key in a certificate file
// itself), pairs each with certificates of files (the group's last read),
// and checks its permissions. A key that belongs to none of the group's
// certificates is only recorded as unknown: it is another certificate's.
// Key bytes are cleared after use and never appear in a result or an error.
func CheckKeys(ctx context.Context, g config.FileGroup, files *FileResult) *KeyResult {
	res := &KeyResult{Time: time.Now()}
	if g.TrustStore {
		return res // CA roots; their keys are elsewhere
	}
	paths := keyPaths(ctx, g, files, res)
	for _, p := range paths {
		if ctx.Err() != nil {
			return res
		}
		if st, ok := checkKey(p, g, files, res); ok {
			res.Keys = append(res.Keys, st)
		}
	}
	return res
}

// keyPaths lists the key files of the group, recording globs that match
// nothing and directories that cannot be listed.
func keyPaths(ctx context.Context, g config.FileGroup, files *FileResult, res *KeyResult) []string {
	var paths []string
	if len(g.KeyPaths) > 0 {
		for _, pattern := range g.KeyPaths {
			found, failed := expand(ctx, pattern, limitsOf(g))
			paths = append(paths, found...)
			for _, f := range failed {
				res.Unknown = append(res.Unknown, probe.UnknownCheck{Check: "private_key:" + f.Path, Reason: f.Reason, Detail: f.Detail})
			}
		}
	} else {
		paths = keysNextTo(ctx, g, files, res)
	}
	for _, kp := range g.KeyPairs {
		paths = append(paths, kp.Key)
	}
	for _, f := range files.Files {
		if len(f.Certificates) > 0 && holdsKey(f.Path) {
			paths = append(paths, f.Path) // a combined PEM: key and certificate in one file
		}
	}
	slices.Sort(paths)
	return slices.Compact(paths)
}

// keysNextTo lists the key files beside the group's certificates. The
// listing shares the group's glob caps, so a directory that a writer fills
// with entries costs no more than a glob would: at most glob_entries
// entries listed in all, at most glob_matches keys.
func keysNextTo(ctx context.Context, g config.FileGroup, files *FileResult, res *KeyResult) []string {
	lim := limitsOf(g)
	var paths []string
	budget := lim.GlobEntries
	dirs := map[string]bool{}
	for _, f := range files.Files {
		dir := filepath.Dir(f.Path)
		if len(f.Certificates) == 0 || dirs[dir] || ctx.Err() != nil {
			continue
		}
		dirs[dir] = true
		found, listed, err := keysIn(dir, budget)
		budget -= listed
		paths = append(paths, found...)
		check := "private_key:" + dir
		switch {
		case errors.Is(err, errListingCapped):
			res.Unknown = append(res.Unknown, probe.UnknownCheck{Check: check, Reason: probe.ReasonLimitReached, Detail: fmt.Sprintf(
				"the key search listed %d directory entries beside the group's certificates, limits.glob_entries; "+
					"keys past them are not checked", lim.GlobEntries)})
			return capKeys(paths, lim, dir, res)
		case err != nil:
			res.Unknown = append(res.Unknown, probe.UnknownCheck{Check: check, Reason: probe.ReasonUnreadable,
				Detail: fmt.Sprintf("listing %s: %v", dir, err)})
		}
		if len(paths) > lim.GlobMatches {
			return capKeys(paths, lim, dir, res)
		}
	}
	return paths
}

// capKeys keeps the first glob_matches keys, saying so when it drops any.
func capKeys(paths []string, lim config.Limits, dir string, res *KeyResult) []string {
	if len(paths) <= lim.GlobMatches {
		return paths
	}
	res.Unknown = append(res.Unknown, probe.UnknownCheck{Check: "private_key:" + dir, Reason: probe.ReasonLimitReached,
		Detail: fmt.Sprintf("more than limits.glob_matches (%d) key files beside the group's certificates; the first %d are checked",
			lim.GlobMatches, lim.GlobMatches)})
	return paths[:lim.GlobMatches]
}

var errListingCapped = errors.New("listing capped")

// keysIn lists dir in batches, at most budget entries, and returns the
// entries named like keys. os.ReadDir would read (and sort) the whole
// directory first.
func keysIn(dir string, budget int) (keys []string, listed int, err error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, 0, err
	}
	defer d.Close()
	for listed < budget {
		names, err := d.Readdirnames(min(1024, budget-listed))
		listed += len(names)
		for _, name := range names {
			if slices.ContainsFunc(keyNames, func(pat string) bool { ok, _ := filepath.Match(pat, name); return ok }) {
				keys = append(keys, filepath.Join(dir, name))
			}
		}
		if errors.Is(err, io.EOF) {
			slices.Sort(keys)
			return keys, listed, nil
		}
		if err != nil {
			return keys, listed, err
		}
	}
	// The budget is spent: capped only if anything is left unread.
	slices.Sort(keys)
	if names, _ := d.Readdirnames(1); len(names) > 0 {
		return keys, listed, errListingCapped
	}
	return keys, listed, nil
}

// holdsKey looks for a private key block in a certificate file.
func holdsKey(path string) bool {
	data, err := readSmall(path)
	defer clear(data)
	return err == nil && bytes.Contains(data, []byte("PRIVATE KEY-----"))
}

// checkKey stats, reads and pairs one key file. ok is false when the key
// is not reported as a key: the file is gone, or the key belongs to none of
// the group's certificates (both recorded as unknown).
func checkKey(path string, g config.FileGroup, files *FileResult, res *KeyResult) (KeyState, bool) {
	check := "private_key:" + path
	info, err := os.Stat(path)
	if err != nil {
		res.Unknown = append(res.Unknown, probe.UnknownCheck{Check: check, Reason: probe.ReasonUnreadable, Detail: statError(path, err).Error()})
		return KeyState{}, false
	}
	st := KeyState{Path: path, Mode: info.Mode(), InsecurePermissions: !info.Mode().IsRegular() || info.Mode().Perm()&0o044 != 0}
	named, claimed := pairFor(path, g, files)
	if !info.Mode().IsRegular() {
		res.Unknown = append(res.Unknown, probe.UnknownCheck{Check: check, Reason: probe.ReasonUnreadable, Detail: notRegular(path, info).Error()})
		return st, claimed
	}
	spki, reason, err := keySPKI(path)
	if err != nil {
		res.Unknown = append(res.Unknown, probe.UnknownCheck{Check: check, Reason: reason, Detail: err.Error()})
		return st, claimed
	}
	if !claimed {
		named = owners(spki, files.Files)
	}
	if len(named) == 0 {
		res.Unknown = append(res.Unknown, unpaired(check, claimed, files))
		return st, claimed
	}
	for _, f := range named {
		st.Paired = append(st.Paired, f.Path)
	}
	match := len(owners(spki, named)) > 0
	st.Matches = &match
	return st, true
}

// unpaired is the unknown check of a key with no certificate to compare:
// its pairing names a file the group did not read, or nothing names it and
// it matches none of the group's certificates, so it belongs to a
// certificate this group does not watch and is not judged at all.
func unpaired(check string, claimed bool, files *FileResult) probe.UnknownCheck {
	switch {
	case claimed:
		return probe.UnknownCheck{Check: check, Reason: probe.ReasonNoPair, Detail: "the certificate file paired with the key was not read"}
	case slices.ContainsFunc(files.Files, func(f FileState) bool { return len(f.Certificates) > 0 }):
		return probe.UnknownCheck{Check: check, Reason: probe.ReasonNotPaired,
			Detail: "no certificate of the group has the key's name or public key; the key belongs to a certificate the group does not watch"}
	default:
		return probe.UnknownCheck{Check: check, Reason: probe.ReasonNoPair, Detail: "no certificate of the group to compare the key with"}
	}
}

// owners are the files holding a certificate with the public key spki.
func owners(spki string, files []FileState) []FileState {
	var out []FileState
	for _, f := range files {
		if slices.ContainsFunc(f.Certificates, func(c probe.CertInfo) bool { return c.SPKISHA256 == spki }) {
			out = append(out, f)
		}
	}
	return out
}

// keySPKI reads a key file and returns the digest of its public key, as
// probe.CertInfo.SPKISHA256 holds it. Errors describe the file, never its bytes.
func keySPKI(path string) (string, probe.Reason, error) {
	data, err := readSmall(path)
	defer clear(data)
	if err != nil {
		return "", probe.ReasonUnreadable, err
	}
	key, reason, err := parseKey(data)
	if err != nil {
		return "", reason, fmt.Errorf("%s: %w", path, err)
	}
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return "", probe.ReasonNotAKey, fmt.Errorf("%s: unsupported key type %T", path, key.Public())
	}
	sum := sha256.Sum256(der)
	return base64.StdEncoding.EncodeToString(sum[:]), probe.ReasonNone, nil
}

type privateKey interface{ Public() crypto.PublicKey }

var (
	errEncrypted = errors.New("the key is encrypted; its certificate cannot be checked without the passphrase")
	errNotAKey   = errors.New("no PKCS#8, PKCS#1 or SEC 1 private key in PEM or DER form")
)

// parseKey takes the first private key block of PEM data, or DER data, and
// clears every decoded block.
func parseKey(data []byte) (privateKey, probe.Reason, error) {
	if !bytes.Contains(data, []byte("-----BEGIN ")) {
		return parseKeyDER(data)
	}
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return nil, probe.ReasonNotAKey, errNotAKey
		}
		if !strings.HasSuffix(b.Type, "PRIVATE KEY") {
			clear(b.Bytes)
			continue
		}
		defer clear(b.Bytes)
		if b.Type == "ENCRYPTED PRIVATE KEY" || strings.Contains(b.Headers["Proc-Type"], "ENCRYPTED") {
			return nil, probe.ReasonKeyEncrypted, errEncrypted
		}
		return parseKeyDER(b.Bytes)
	}
}

func parseKeyDER(der []byte) (privateKey, probe.Reason, error) {
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		return asPrivateKey(k)
	}
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, probe.ReasonNone, nil
	}
	if k, err := x509.ParseECPrivateKey(der); err == nil {
		return k, probe.ReasonNone, nil
	}
	return nil, probe.ReasonNotAKey, errNotAKey
}

func asPrivateKey(k any) (privateKey, probe.Reason, error) {
	if pk, ok := k.(privateKey); ok {
		return pk, probe.ReasonNone, nil
	}
	return nil, probe.ReasonNotAKey, fmt.Errorf("unsupported key type %T", k)
}

// readSmall reads a file that should be small, without blocking on a FIFO.
func readSmall(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	switch {
	case err != nil:
		return nil, fmt.Errorf("reading %s: %w", path, err)
	case !info.Mode().IsRegular():
		return nil, notRegular(path, info)
	case info.Size() > maxKeySize:
		return nil, fmt.Errorf("%s is %d bytes, more than a key file can be", path, info.Size())
	}
	data, err := readLimited(f, info.Size())
	if err != nil {
		clear(data)
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return data, nil
}

// pairFor picks the certificate files a key belongs with by name: the file
// itself (a combined PEM); the cert of a key_pairs entry naming the key;
// the same name stem in the same directory, then anywhere in the group
// (tls.key and tls.crt, server-key.pem and server-cert.pem, certbot's
// privkey3.pem and fullchain3.pem). claimed is whether any of these names
// the key, even when the named file holds no certificate; a key nothing
// claims is paired only with certificates that hold its public key.
func pairFor(key string, g config.FileGroup, files *FileResult) (named []FileState, claimed bool) {
	var withCerts []FileState
	for _, f := range files.Files {
		if len(f.Certificates) > 0 {
			withCerts = append(withCerts, f)
		}
	}
	var explicit []string
	for _, kp := range g.KeyPairs {
		if filepath.Clean(kp.Key) == filepath.Clean(key) {
			explicit = append(explicit, filepath.Clean(kp.Cert))
		}
	}
	dir, ks := filepath.Dir(key), stem(key, keyStemRe)
	for _, same := range []func(FileState) bool{
		func(f FileState) bool { return f.Path == key },
		func(f FileState) bool { return slices.Contains(explicit, filepath.Clean(f.Path)) },
		func(f FileState) bool { return filepath.Dir(f.Path) == dir && stem(f.Path, certStemRe) == ks },
		func(f FileState) bool { return stem(f.Path, certStemRe) == ks },
	} {
		if picked := slices.DeleteFunc(slices.Clone(withCerts), func(f FileState) bool { return !same(f) }); len(picked) > 0 {
			return picked, true
		}
	}
	return nil, len(explicit) > 0
}

// Name stems: the file name without its extension and without a key or
// certificate word, keeping a certbot generation number.
var (
	keyStemRe  = regexp.MustCompile(`(?i)^(.*?)[-_.]?(?:priv)?key(\d*)$`)
	certStemRe = regexp.MustCompile(`(?i)^(.*?)[-_.]?(?:cert|crt|fullchain|chain|bundle)(\d*)$`)
)

func stem(path string, re *regexp.Regexp) string {
	name := filepath.Base(path)
	name = strings.TrimSuffix(name, filepath.Ext(name))
	if m := re.FindStringSubmatch(name); m != nil {
		return m[1] + m[2]
	}
	return name
}
