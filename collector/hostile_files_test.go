package collector

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mcpcert/mcp_cert_exporter/certfile"
	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/internal/metricstest"
	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
	"github.com/mcpcert/mcp_cert_exporter/internal/tooltest"
	"github.com/mcpcert/mcp_cert_exporter/metrics"
)

// A certificate and a key whose names are not UTF-8 used to fail /metrics
// for every target. Their path labels are escaped; the scrape stays valid,
// promtool finds it clean, and the other group is untouched.
func TestNonUTF8FileNamesKeepTheScrape(t *testing.T) {
	promtool := tooltest.Require(t, "promtool")
	leaf := testpki.NewCA("Names CA").Leaf("odd")
	bad, good := t.TempDir(), t.TempDir()
	testpki.WriteFile(t, bad, "x\xff.pem", leaf.PEM())
	testpki.WriteFile(t, bad, "x\xff.key", leaf.KeyPEM()) // found by the default key patterns
	testpki.WriteFile(t, good, "tls.pem", leaf.PEM())
	c := runCollector(t, mustParse(t, fmt.Sprintf("files:\n  - {name: odd, paths: [%q]}\n  - {name: good, paths: [%q]}\n",
		bad+"/*.pem", good+"/*.pem")))
	escaped := filepath.Join(bad, `x\xff.pem`)
	var body string
	eventually(t, "both groups read and the key checked", func() bool {
		for _, t := range c.targets {
			t.scan(context.Background())
		}
		b := scrapeText(t, c)
		body = b
		// The good group's certificate, not just any of its series: a
		// posture scan renders its own before the first read is stored.
		good := metricstest.Parse(t, b).Samples("ssl_certificate_expiry_seconds", map[string]string{"target": "good"})
		return len(good) > 0 && strings.Contains(b, `x\\xff.pem`) && strings.Contains(b, "ssl_private_key_matches_certificate")
	})
	f := metricstest.Parse(t, body)
	for _, target := range []string{"odd", "good"} {
		if n := len(f.Samples("ssl_certificate_expiry_seconds", map[string]string{"target": target})); n != 1 {
			t.Errorf("%s: %d expiry series, want 1", target, n)
		}
	}
	f.One(t, "ssl_certificate_info", map[string]string{"target": "odd", "path": escaped})
	f.One(t, "ssl_private_key_matches_certificate", map[string]string{"target": "odd", "path": filepath.Join(bad, `x\xff.key`)})
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

func mustParse(t *testing.T, yml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(yml), "test.yml")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// A TLS peer that sends a long chain, and a leaf with many SANs, are cut
// to the limits, and each cut is reported on the target.
func TestChainAndSANLimitsAreReported(t *testing.T) {
	ca := testpki.NewCA("Long CA")
	var sans []string
	for i := range 300 {
		sans = append(sans, fmt.Sprintf("h%03d.example.com", i))
	}
	leaf := ca.Issue(testpki.Options{CN: "many", DNSNames: sans})
	cert := leaf.TLS()
	for i := range 40 { // 41 certificates on the wire
		cert.Certificate = append(cert.Certificate, testpki.NewCA(fmt.Sprintf("extra %02d", i)).Cert.Raw)
	}
	addr := testpki.Serve(t, &tls.Config{Certificates: []tls.Certificate{cert}})
	c := startCollector(t, "limits: {certificates_per_chain: 5, sans_per_certificate: 10}\nendpoints:\n"+
		"  - {name: long, address: \""+addr+"\", tls_config: {insecure_skip_verify: true}}\n")
	var f metricstest.Families
	eventually(t, "the endpoint probed", func() bool {
		f = scrape(t, c)
		return len(f.Samples("ssl_certificate_info", nil)) > 0
	})
	if n := len(f.Samples("ssl_certificate_info", map[string]string{"target": "long"})); n != 5 {
		t.Errorf("%d certificates exported, want certificates_per_chain = 5", n)
	}
	for _, limit := range []string{"certificates_per_chain", "sans_per_certificate"} {
		f.One(t, "ssl_limit_reached_info", map[string]string{"target": "long", "path": "", "limit": limit})
	}
	got := f.LabelValues("ssl_certificate_info", "sans", map[string]string{"subject_cn": "many"})
	if want := strings.Join(sans[:10], ",") + ",…(+290 more)"; len(got) != 1 || got[0] != want {
		t.Errorf("sans label %q, want %q", got, want)
	}
}

// FuzzFileNamesAndContents puts one file of any name and content next to
// a good group, reads both with the file reader and renders what a scrape
// serves. Whatever the file, the text parses and the good group's
// certificate is in it.
func FuzzFileNamesAndContents(f *testing.F) {
	good := testpki.NewCA("Fuzz CA").Leaf("good")
	f.Add([]byte("x\xff.pem"), good.PEM())
	f.Add([]byte("tls.crt"), []byte("-----BEGIN PKCS7-----\nMAA=\n-----END PKCS7-----\n"))
	f.Add([]byte("a\"b\\c\n.key"), good.KeyPEM())
	f.Add([]byte("\xc3\x28"), append(good.PEM(), good.Cert.Raw...))
	goodDir := f.TempDir()
	testpki.WriteFile(f, goodDir, "tls.pem", good.PEM())
	f.Fuzz(func(t *testing.T, name, content []byte) {
		if len(name) == 0 || len(name) > 200 || bytes.ContainsAny(name, "/\x00") || string(name) == "." || string(name) == ".." {
			t.Skip("not a file name")
		}
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, string(name)), content, 0o600); err != nil {
			t.Skip(err)
		}
		now := time.Now()
		var exps []*metrics.Exposition
		for _, g := range []config.FileGroup{
			{Name: "odd", Paths: []string{dir + "/*"}, Limits: config.DefaultLimits},
			{Name: "good", Paths: []string{goodDir + "/*"}, Limits: config.DefaultLimits},
		} {
			res := certfile.NewFileReader().Read(context.Background(), g)
			keys := certfile.CheckKeys(context.Background(), g, res)
			e := metrics.Render(func(ch *metrics.Samples) {
				metrics.RenderFiles(ch, g, res, now)
				metrics.RenderKeys(ch, g.Name, keys)
			})
			if e.Err() != nil {
				t.Fatalf("rendering %s: %v", g.Name, e.Err())
			}
			exps = append(exps, e)
		}
		var b bytes.Buffer
		if err := metrics.Write(&b, exps, nil, now); err != nil {
			t.Fatal(err)
		}
		p := expfmt.NewTextParser(model.LegacyValidation)
		parsed, err := p.TextToMetricFamilies(&b)
		if err != nil {
			t.Fatalf("the scrape does not parse: %v", err)
		}
		found := false
		for _, m := range parsed["ssl_certificate_expiry_seconds"].GetMetric() {
			for _, l := range m.GetLabel() {
				found = found || l.GetName() == "target" && l.GetValue() == "good"
				if !model.LabelValue(l.GetValue()).IsValid() {
					t.Errorf("label %s=%q is not valid", l.GetName(), l.GetValue())
				}
			}
		}
		if !found {
			t.Error("the good group's certificate is missing")
		}
	})
}
