package certfile

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

// keyWant is what one key file should show; matches is "" for unknown.
type keyWant struct {
	matches  string // "true", "false" or "" (unknown)
	insecure bool
	unknown  probe.Reason // reason of the unknown check, when matches is ""
}

type keyLayout struct {
	name     string
	keyPaths []string         // relative globs for key_paths
	keyPairs []config.KeyPair // relative cert and key of key_pairs
	paths    string           // relative glob for paths, when not every .crt and .pem
	// trustStore marks the group trust_store: true.
	trustStore bool
	limits     config.Limits // when set, the group's limits
	build      func(t *testing.T, dir string)
	want       map[string]keyWant // by path relative to dir
	noMatch    []string           // key_paths patterns that must be reported NO_MATCH
	// gone and strangers must be reported as unknown with this reason and
	// not judged: no match, no permissions.
	gone map[string]probe.Reason
}

func writeMode(t *testing.T, dir, name string, data []byte, mode os.FileMode) string {
	t.Helper()
	p := testpki.WriteFile(t, dir, name, data)
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func pemKey(t *testing.T, typ string, der []byte) []byte {
	t.Helper()
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func TestCheckKeys(t *testing.T) {
	ca := testpki.NewCA("Key CA")
	ec := ca.Leaf("ec")
	other := ca.Leaf("other")
	rsaCert := ca.Issue(testpki.Options{RSABits: 2048})
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ed := ca.Issue(testpki.Options{Key: edKey})
	ecDER, err := x509.MarshalECPrivateKey(ec.Key.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(ec.Key)
	if err != nil {
		t.Fatal(err)
	}
	yes, no := keyWant{matches: "true"}, keyWant{matches: "false"}
	cases := []keyLayout{
		{
			name: "matching, mismatched and readable keys next to their certificates",
			build: func(t *testing.T, dir string) {
				testpki.WriteFile(t, dir, "tls.crt", ec.PEM())
				testpki.WriteFile(t, dir, "tls.key", ec.KeyPEM())
				testpki.WriteFile(t, dir, "other/server.crt", ec.PEM())
				writeMode(t, dir, "other/server.key", other.KeyPEM(), 0o644)
				testpki.WriteFile(t, dir, "group/a.pem", rsaCert.PEM())
				writeMode(t, dir, "group/a-key.pem", rsaCert.KeyPEM(), 0o640)
			},
			want: map[string]keyWant{
				"tls.key":          yes,
				"other/server.key": {matches: "false", insecure: true},
				"group/a-key.pem":  {matches: "true", insecure: true},
			},
		},
		{
			name: "key formats: SEC 1, PKCS#1, PKCS#8 DER, Ed25519",
			build: func(t *testing.T, dir string) {
				testpki.WriteFile(t, dir, "ec.crt", ec.PEM())
				testpki.WriteFile(t, dir, "ec.key", pemKey(t, "EC PRIVATE KEY", ecDER))
				testpki.WriteFile(t, dir, "rsa/rsa.crt", rsaCert.PEM())
				testpki.WriteFile(t, dir, "rsa/rsa.key", pemKey(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaCert.Key.(*rsa.PrivateKey))))
				testpki.WriteFile(t, dir, "der/leaf.crt", ec.PEM())
				testpki.WriteFile(t, dir, "der/leaf.key", pkcs8)
				testpki.WriteFile(t, dir, "ed/ed.crt", ed.PEM())
				testpki.WriteFile(t, dir, "ed/ed.key", ed.KeyPEM())
			},
			want: map[string]keyWant{"ec.key": yes, "rsa/rsa.key": yes, "der/leaf.key": yes, "ed/ed.key": yes},
		},
		{
			name: "certbot live and archive layout",
			build: func(t *testing.T, dir string) {
				for _, d := range []string{"live/a.example", "live/b.example"} {
					testpki.WriteFile(t, dir, d+"/cert.pem", ec.PEM())
					testpki.WriteFile(t, dir, d+"/fullchain.pem", testpki.Bundle(ec, ca))
				}
				testpki.WriteFile(t, dir, "live/a.example/privkey.pem", ec.KeyPEM())
				testpki.WriteFile(t, dir, "live/b.example/privkey.pem", other.KeyPEM())
				testpki.WriteFile(t, dir, "archive/cert1.pem", other.PEM())
				testpki.WriteFile(t, dir, "archive/cert2.pem", ec.PEM())
				testpki.WriteFile(t, dir, "archive/privkey1.pem", ec.KeyPEM()) // belongs to cert2, not cert1
				testpki.WriteFile(t, dir, "archive/privkey2.pem", ec.KeyPEM())
			},
			want: map[string]keyWant{
				"live/a.example/privkey.pem": yes, "live/b.example/privkey.pem": no,
				"archive/privkey1.pem": no, "archive/privkey2.pem": yes,
			},
		},
		{
			name:     "key_paths in another directory pair by name",
			keyPaths: []string{"private/*.key", "missing/*.key"},
			build: func(t *testing.T, dir string) {
				testpki.WriteFile(t, dir, "certs/mcp.crt", ec.PEM())
				testpki.WriteFile(t, dir, "certs/other.crt", other.PEM())
				testpki.WriteFile(t, dir, "private/mcp.key", ec.KeyPEM())
				testpki.WriteFile(t, dir, "private/other.key", ec.KeyPEM())
				testpki.WriteFile(t, dir, "certs/ignored.key", other.KeyPEM()) // not in key_paths
			},
			want:    map[string]keyWant{"private/mcp.key": yes, "private/other.key": no},
			noMatch: []string{"missing/*.key"},
		},
		{
			name: "combined PEM, encrypted key, garbage, FIFO, dangling symlink, Kubernetes symlink",
			build: func(t *testing.T, dir string) {
				writeMode(t, dir, "combined.pem", append(ec.PEM(), ec.KeyPEM()...), 0o644)
				testpki.WriteFile(t, dir, "enc.key", pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte("secret-ciphertext")}))
				testpki.WriteFile(t, dir, "junk.key", []byte("-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWp1bms=\n-----END PRIVATE KEY-----\n"))
				if err := syscall.Mkfifo(filepath.Join(dir, "fifo.key"), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(filepath.Join(dir, "gone"), filepath.Join(dir, "dangling.key")); err != nil {
					t.Fatal(err)
				}
				testpki.WriteFile(t, dir, "k8s/..data/tls.key", ec.KeyPEM())
				testpki.WriteFile(t, dir, "k8s/..data/tls.crt", ec.PEM())
				for _, n := range []string{"tls.key", "tls.crt"} {
					if err := os.Symlink("..data/"+n, filepath.Join(dir, "k8s", n)); err != nil {
						t.Fatal(err)
					}
				}
			},
			want: map[string]keyWant{
				"combined.pem": {matches: "true", insecure: true},
				"k8s/tls.key":  yes,
			},
			// Nothing pairs them by name, and their public key cannot be read.
			gone: map[string]probe.Reason{"dangling.key": probe.ReasonUnreadable, "enc.key": probe.ReasonKeyEncrypted, "junk.key": probe.ReasonNotAKey,
				"fifo.key": probe.ReasonUnreadable},
		},
		{
			name: "keys that cannot be read are judged when their name pairs them",
			build: func(t *testing.T, dir string) {
				testpki.WriteFile(t, dir, "enc.crt", ec.PEM())
				writeMode(t, dir, "enc.key", pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte("secret-ciphertext")}), 0o644)
				testpki.WriteFile(t, dir, "fifo.crt", ec.PEM())
				if err := syscall.Mkfifo(filepath.Join(dir, "fifo.key"), 0o600); err != nil {
					t.Fatal(err)
				}
			},
			want: map[string]keyWant{
				"enc.key":  {insecure: true, unknown: probe.ReasonKeyEncrypted},
				"fifo.key": {insecure: true, unknown: probe.ReasonUnreadable},
			},
		},
		{
			// Issue 10: a group watching one certificate of a directory that
			// holds others' keys judges only the key that is its own.
			name:  "nginx directory: the group watches api.crt only",
			paths: "api.crt",
			build: func(t *testing.T, dir string) {
				testpki.WriteFile(t, dir, "api.crt", ec.PEM())
				writeMode(t, dir, "api.key", ec.KeyPEM(), 0o600)
				testpki.WriteFile(t, dir, "web.crt", other.PEM())
				writeMode(t, dir, "web.key", other.KeyPEM(), 0o644)
				writeMode(t, dir, "stray.key", rsaCert.KeyPEM(), 0o644)
			},
			want: map[string]keyWant{"api.key": yes},
			gone: map[string]probe.Reason{"web.key": probe.ReasonNotPaired, "stray.key": probe.ReasonNotPaired},
		},
		{
			name:  "a key named like none of the certificates pairs by its public key",
			paths: "certs/*.pem",
			build: func(t *testing.T, dir string) {
				testpki.WriteFile(t, dir, "certs/server.pem", ec.PEM())
				testpki.WriteFile(t, dir, "certs/other.pem", other.PEM())
				writeMode(t, dir, "certs/secret.key", ec.KeyPEM(), 0o640)
			},
			want: map[string]keyWant{"certs/secret.key": {matches: "true", insecure: true}},
		},
		{
			name:     "key_pairs name a key's certificate: a wrong key is a mismatch",
			paths:    "certs/*.pem",
			keyPaths: []string{"private/*.pem"},
			keyPairs: []config.KeyPair{{Cert: "certs/server.pem", Key: "private/secret.pem"}, {Cert: "certs/gone.pem", Key: "private/lost.pem"}},
			build: func(t *testing.T, dir string) {
				testpki.WriteFile(t, dir, "certs/server.pem", ec.PEM())
				testpki.WriteFile(t, dir, "certs/other.pem", other.PEM())
				testpki.WriteFile(t, dir, "private/secret.pem", other.KeyPEM())
				writeMode(t, dir, "private/lost.pem", other.KeyPEM(), 0o644)
			},
			want: map[string]keyWant{
				"private/secret.pem": no,
				"private/lost.pem":   {insecure: true, unknown: probe.ReasonNoPair},
			},
		},
		{
			name:     "a group without certificates has nothing to pair",
			paths:    "none/*.pem",
			keyPaths: []string{"none/key.pem"},
			build: func(t *testing.T, dir string) {
				testpki.WriteFile(t, dir, "none/cert.pem", []byte("not a certificate"))
				testpki.WriteFile(t, dir, "none/key.pem", ec.KeyPEM())
			},
			gone: map[string]probe.Reason{"none/key.pem": probe.ReasonNoPair},
		},
		{
			// The key search beside certificates shares the group's glob
			// caps: a directory a writer floods is listed only so far.
			name:   "a directory crowded with entries is listed up to glob_entries",
			paths:  "crowded/tls.crt",
			limits: limitsWith(func(l *config.Limits) { l.GlobEntries = 50 }),
			build: func(t *testing.T, dir string) {
				testpki.WriteFile(t, dir, "crowded/tls.crt", ec.PEM())
				for i := range 200 {
					testpki.WriteFile(t, dir, fmt.Sprintf("crowded/junk-%03d", i), nil)
				}
			},
			gone: map[string]probe.Reason{"crowded": probe.ReasonLimitReached},
		},
		{
			name:   "more keys than glob_matches: the first are checked",
			paths:  "many/tls.crt",
			limits: limitsWith(func(l *config.Limits) { l.GlobMatches = 2 }),
			build: func(t *testing.T, dir string) {
				testpki.WriteFile(t, dir, "many/tls.crt", ec.PEM())
				for _, k := range []string{"a.key", "b.key", "c.key", "d.key"} {
					testpki.WriteFile(t, dir, "many/"+k, ec.KeyPEM())
				}
			},
			want: map[string]keyWant{"many/a.key": yes, "many/b.key": yes},
			gone: map[string]probe.Reason{"many": probe.ReasonLimitReached},
		},
		{
			name:       "a trust store's keys are not looked for",
			paths:      "roots/*.pem",
			trustStore: true,
			build: func(t *testing.T, dir string) {
				testpki.WriteFile(t, dir, "roots/ca.pem", ca.PEM())
				writeMode(t, dir, "roots/key.pem", ca.KeyPEM(), 0o644)
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.build(t, dir)
			g := config.FileGroup{Name: "g", Paths: []string{dir + "/**/*.{crt,pem}"}, TrustStore: tc.trustStore, Limits: tc.limits}
			if tc.paths != "" {
				g.Paths = []string{filepath.Join(dir, tc.paths)}
			}
			for _, kp := range tc.keyPaths {
				g.KeyPaths = append(g.KeyPaths, filepath.Join(dir, kp))
			}
			for _, kp := range tc.keyPairs {
				g.KeyPairs = append(g.KeyPairs, config.KeyPair{Cert: filepath.Join(dir, kp.Cert), Key: filepath.Join(dir, kp.Key)})
			}
			files := NewFileReader().Read(context.Background(), g)
			res := CheckKeys(context.Background(), g, files)
			tc.check(t, dir, res)
		})
	}
}

func (tc *keyLayout) check(t *testing.T, dir string, res *KeyResult) {
	t.Helper()
	got := map[string]keyWant{}
	for _, k := range res.Keys {
		w := keyWant{insecure: k.InsecurePermissions}
		if k.Matches != nil {
			w.matches = map[bool]string{true: "true", false: "false"}[*k.Matches]
		}
		rel, _ := filepath.Rel(dir, k.Path)
		got[rel] = w
	}
	unknown := map[string]probe.Reason{}
	for _, u := range res.Unknown {
		rel, _ := filepath.Rel(dir, strings.TrimPrefix(u.Check, "private_key:"))
		unknown[rel] = u.Reason
		if strings.Contains(u.Detail, "secret") || strings.Contains(u.Detail, "c2VjcmV0") {
			t.Errorf("%s: the detail quotes the key file: %q", u.Check, u.Detail)
		}
	}
	for rel, w := range got {
		w.unknown = unknown[rel]
		got[rel] = w
	}
	for rel, want := range tc.want {
		if got[rel] != want {
			t.Errorf("%s: got %+v, want %+v", rel, got[rel], want)
		}
	}
	for rel := range got {
		if _, ok := tc.want[rel]; !ok {
			t.Errorf("unexpected key %s: %+v", rel, got[rel])
		}
	}
	for _, p := range tc.noMatch {
		if unknown[p] != probe.ReasonGlobEmpty {
			t.Errorf("key_paths %s: %q, want %s (unknown: %v)", p, unknown[p], probe.ReasonGlobEmpty, unknown)
		}
	}
	if len(tc.want)+len(tc.gone) == 0 && len(res.Unknown) > 0 {
		t.Errorf("unknown checks where none were expected: %+v", res.Unknown)
	}
	for p, reason := range tc.gone {
		if _, isKey := got[p]; isKey || unknown[p] != reason {
			t.Errorf("%s: reported as a key %v, unknown reason %q; want only %s", p, isKey, unknown[p], reason)
		}
	}
}

func TestKeyStems(t *testing.T) {
	cases := []struct {
		key, cert string
		pair      bool
	}{
		{"tls.key", "tls.crt", true},
		{"server-key.pem", "server-cert.pem", true},
		{"server-key.pem", "server.pem", true},
		{"server_key.pem", "server_crt.pem", true},
		{"privkey.pem", "fullchain.pem", true},
		{"privkey.pem", "cert.pem", true},
		{"privkey3.pem", "fullchain3.pem", true},
		{"privkey3.pem", "cert2.pem", false},
		{"key.pem", "cert.pem", true},
		{"mcp.key", "mcp-bundle.pem", true},
		{"mcp.key", "other.crt", false},
	}
	for _, tc := range cases {
		if got := stem(tc.key, keyStemRe) == stem(tc.cert, certStemRe); got != tc.pair {
			t.Errorf("%s with %s: pair %v, want %v (%q, %q)", tc.key, tc.cert, got, tc.pair, stem(tc.key, keyStemRe), stem(tc.cert, certStemRe))
		}
	}
}

// limitsWith is the default limits changed by set.
func limitsWith(set func(*config.Limits)) config.Limits {
	l := config.DefaultLimits
	set(&l)
	return l
}
