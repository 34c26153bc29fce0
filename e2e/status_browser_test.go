package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/internal/mcptest"
	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
	"github.com/mcpcert/mcp_cert_exporter/internal/tooltest"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

// trustStoreRoots is the size of the trust store that must fold into one
// row; the first expiredRoots of them expired long ago, as in Debian's bundle.
const trustStoreRoots, expiredRoots = 140, 3

// statusFleet starts, on 127.0.0.1, one endpoint failing (expired), one
// expiring in three days, one healthy MCP server (go-sdk, Streamable HTTP),
// and writes a trust store of 140 roots, 3 of them long expired; it returns
// the exporter's config.
func statusFleet(t *testing.T) string {
	dir := t.TempDir()
	ca := testpki.NewCA("Fleet Root")
	inter := ca.Intermediate("Fleet Intermediate")
	now := time.Now()
	leaf := func(cn string, from, to time.Duration) tls.Certificate {
		return inter.Issue(testpki.Options{CN: cn, DNSNames: []string{"localhost"}, NotBefore: now.Add(from), NotAfter: now.Add(to)}).TLS(inter)
	}
	serve := func(c tls.Certificate) string {
		return testpki.Serve(t, &tls.Config{Certificates: []tls.Certificate{c}})
	}
	addrs := map[string]string{
		"billing-mcp": serve(leaf("billing", -48*time.Hour, -24*time.Hour)),
		"search-mcp":  serve(leaf("search", -24*time.Hour, 3*24*time.Hour)),
	}
	docs, mux := mcptest.ServeTLS(t, leaf("docs", -24*time.Hour, 300*24*time.Hour))
	calls := &mcptest.Calls{}
	mux.Handle("/mcp", mcptest.Streamable(mcptest.NewServer("docs", calls), calls, nil))
	var roots []*testpki.Cert
	for i := range trustStoreRoots {
		from, to := -time.Hour, time.Duration(400+i)*24*time.Hour
		if i < expiredRoots {
			from, to = -4000*24*time.Hour, -400*24*time.Hour
		}
		roots = append(roots, testpki.SelfSigned(testpki.Options{CN: fmt.Sprintf("Store Root %03d", i), IsCA: true,
			NotBefore: now.Add(from), NotAfter: now.Add(to)}))
	}
	store := testpki.WriteFile(t, dir, "ca-certificates.crt", testpki.Bundle(roots...))
	caFile := testpki.WriteFile(t, dir, "ca.pem", ca.PEM())
	var b strings.Builder
	b.WriteString("interval: 1h\nendpoints:\n")
	for _, name := range []string{"billing-mcp", "search-mcp"} {
		fmt.Fprintf(&b, "  - {name: %s, address: %q, tls_config: {ca_file: %q, server_name: localhost}}\n", name, addrs[name], caFile)
	}
	fmt.Fprintf(&b, "  - {name: docs-mcp, url: %q, tls_config: {ca_file: %q, server_name: localhost}}\n", docs+"/mcp", caFile)
	fmt.Fprintf(&b, "files:\n  - {name: trust-store, paths: [%q], trust_store: true}\n", store)
	return writeConfig(t, filepath.Join(dir, "c.yml"), b.String())
}

// chromium runs headless Chromium on one page with extra flags and returns
// what it printed.
func chromium(t *testing.T, url string, flags ...string) []byte {
	t.Helper()
	bin := tooltest.Require(t, "chromium")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir()}, flags...)
	cmd := exec.CommandContext(ctx, bin, append(args, url)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", flags, err, stderr.String())
	}
	return out
}

var (
	rowName   = regexp.MustCompile(`<tr class="\w+" data-name="([^"]+)"`)
	cardCount = regexp.MustCompile(`id="(\w+)"><b>(\d+)</b>`)
)

// TestStatusPageInBrowser renders the status page of real probes in
// Chromium: the summary, the urgency order, the folded trust store, and the
// per-target view that prints what check prints.
func TestStatusPageInBrowser(t *testing.T) {
	e := startExporter(t, "--config.file="+statusFleet(t))
	eventually(t, "every target refreshed", func() bool {
		_, text := e.get("/status?format=text")
		return strings.Contains(text, "0 pending")
	})
	url := "http://" + e.addr + "/status"
	dom := string(chromium(t, url, "--dump-dom"))

	var order []string
	for _, m := range rowName.FindAllStringSubmatch(dom, -1) {
		order = append(order, m[1])
	}
	if got, want := strings.Join(order, " "), "billing-mcp search-mcp docs-mcp trust-store"; got != want {
		t.Errorf("rows in order %q, want %q", got, want)
	}
	counts := map[string]string{}
	for _, m := range cardCount.FindAllStringSubmatch(dom, -1) {
		counts[m[1]] = m[2]
	}
	// Certificates: the search leaf expires in 3 days; the billing leaf has
	// expired and is counted apart. The trust store's expired roots count
	// nowhere.
	for card, want := range map[string]string{"failing": "1", "within7d": "1", "within30d": "1", "healthy": "2"} {
		if counts[card] != want {
			t.Errorf("summary %s = %q, want %s (all: %v)", card, counts[card], want, counts)
		}
	}
	if !strings.Contains(dom, "; 1 expired</a>") {
		t.Errorf("the 7-day card does not count exactly the billing leaf as expired")
	}
	billing := rowOf(t, dom, "billing-mcp")
	if !strings.Contains(billing, "CERTIFICATE_EXPIRED") || !strings.Contains(billing, probe.ReasonCertificateExpired.Remedy()) {
		t.Errorf("the failing row lacks its reason or remedy:\n%s", billing)
	}
	store := rowOf(t, dom, "trust-store")
	if strings.Count(store, `<details class="group">`) != 1 || strings.Contains(store, "<details open") ||
		!strings.Contains(store, fmt.Sprintf("%d certificates, soonest", trustStoreRoots)) ||
		!strings.Contains(store, fmt.Sprintf("%d roots, %d expired", trustStoreRoots, expiredRoots)) ||
		!regexp.MustCompile(`soonest <span class="u-">Store Root 003 `).MatchString(store) {
		t.Errorf("the trust store is not one folded row with its count, a note and its soonest unexpired root:\n%.2000s", store)
	}
	for _, name := range []string{"billing-mcp", "search-mcp", "docs-mcp"} {
		if strings.Contains(rowOf(t, dom, name), `class="group"`) {
			t.Errorf("%s folds its short chain", name)
		}
	}
	if docs := rowOf(t, dom, "docs-mcp"); !regexp.MustCompile(`MCP <b class="up">up</b> streamable \d{4}-\d\d-\d\d`).MatchString(docs) {
		t.Errorf("the MCP row lacks its transport and protocol version:\n%s", docs)
	}
	assertCheckReport(t, e, url)
	shot := screenshotPath(t)
	chromium(t, url, "--screenshot="+shot, "--window-size=1280,1600")
	checkScreenshot(t, shot)
}

// rowOf is the table row of the named target in the DOM.
func rowOf(t *testing.T, dom, name string) string {
	t.Helper()
	start := strings.Index(dom, `data-name="`+name+`"`)
	if start < 0 {
		t.Fatalf("no row for %s", name)
	}
	end := strings.Index(dom[start:], "</tr>")
	return dom[start : start+end]
}

// assertCheckReport compares the per-target view with what check prints for
// the same server: the chain, verdict and remedy lines must match.
func assertCheckReport(t *testing.T, e *exporter, url string) {
	t.Helper()
	dom := string(chromium(t, url+"?target=billing-mcp", "--dump-dom"))
	if got := rowName.FindAllStringSubmatch(dom, -1); len(got) != 1 || got[0][1] != "billing-mcp" {
		t.Errorf("the per-target view lists %v", got)
	}
	_, text := e.get("/status?format=text&target=billing-mcp")
	for _, want := range []string{"Verdict:      FAILED: CERTIFICATE_EXPIRED", "Remedy:       " + probe.ReasonCertificateExpired.Remedy(), "  0 [leaf] billing"} {
		if !strings.Contains(text, want) {
			t.Errorf("the per-target text lacks %q:\n%s", want, text)
		}
		if !strings.Contains(dom, htmlEscape(want)) {
			t.Errorf("the per-target page lacks %q", want)
		}
	}
}

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}

// screenshotPath is where the screenshot goes: MCPCERT_STATUS_SCREENSHOT,
// docs/status.png under -update, else the test's temporary directory.
func screenshotPath(t *testing.T) string {
	if p := os.Getenv("MCPCERT_STATUS_SCREENSHOT"); p != "" {
		return p
	}
	if *update {
		return filepath.Join("docs", "status.png")
	}
	return filepath.Join(t.TempDir(), "status.png")
}

// checkScreenshot checks that the screenshot is a page-sized PNG with
// something drawn on it.
func checkScreenshot(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot %s: %v", path, err)
	}
	colours := map[uint32]bool{}
	for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y += 7 {
		for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x += 7 {
			r, g, b, _ := img.At(x, y).RGBA()
			colours[r>>12<<8|g>>12<<4|b>>12] = true
		}
	}
	if w, h := img.Bounds().Dx(), img.Bounds().Dy(); w != 1280 || h != 1600 || len(colours) < 8 {
		t.Errorf("screenshot %s is %dx%d with %d colours", path, w, h, len(colours))
	}
	t.Logf("screenshot: %s", path)
}
