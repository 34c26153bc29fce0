package collector

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
)

// Scrapes, reads of the views the status page reads, refreshes and reloads
// run at once against good and hostile peers; -race checks every shared
// access. The reloads switch between two target sets and a bad file, so
// jobs are added, dropped and kept while probes of them are in flight.
func TestScrapesRefreshesAndReloadsConcurrently(t *testing.T) {
	caFile, peers := startPeers(t)
	dir := t.TempDir()
	testpki.WriteFile(t, dir, "certs/a.pem", testpki.NewCA("Race Root").PEM())
	files := "files:\n  - {name: certs, paths: [\"" + dir + "/certs/*.pem\"]}\n"
	configs := []string{
		peersConfig(caFile, peers, "10ms", "50ms") + files,
		peersConfig(caFile, peers[:5], "15ms", "50ms"),
		"endpoints:\n  - {name: broken, address: no-port}\n",
	}
	c := startCollector(t, configs[0])
	file := filepath.Join(dir, "config.yml")

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { scrapeUntil(t, c, stop) })
	}
	for i := range 150 {
		yml := configs[i%len(configs)]
		if err := os.WriteFile(file, []byte(yml), 0o600); err != nil {
			t.Fatal(err)
		}
		err := c.Reload(file)
		if (err != nil) != strings.Contains(yml, "no-port") {
			t.Fatalf("reload %d: %v", i, err)
		}
	}
	close(stop)
	wg.Wait()

	apply(t, c, configs[0])
	eventually(t, "every peer reported after the last reload", func() bool {
		f := scrape(t, c)
		for _, p := range peers {
			if len(f.Samples("ssl_probe_last_run_timestamp_seconds", map[string]string{"target": p.name})) != 1 {
				return false
			}
		}
		return true
	})
}

// scrapeUntil gathers metrics and reads every field of the views the status
// page reads, in a loop. It reports with t.Error: it runs outside the test's
// goroutine.
func scrapeUntil(t *testing.T, c *Collector, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		if err := c.WriteMetrics(io.Discard, prometheus.NewRegistry(), time.Now()); err != nil {
			t.Errorf("/metrics: %v", err)
			return
		}
		body, err := c.GzipMetrics(prometheus.NewRegistry(), time.Now())
		if err == nil {
			_, err = gunzip(body)
		}
		if err != nil {
			t.Errorf("/metrics, gzip: %v", err)
			return
		}
		endpoints, files := c.Views()
		if _, err := json.Marshal([]any{endpoints, files}); err != nil {
			t.Errorf("views: %v", err)
			return
		}
	}
}
