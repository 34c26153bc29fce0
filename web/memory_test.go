package web

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

// Memory bounds of the status page at 20,000 endpoints under 50 concurrent
// requests for five different pages (docs/running.md, "The status page"). Before shared
// rendering each request held its own copy of every row: the peak grew by
// about 700 MiB here.
const (
	statusEndpoints   = 20000
	statusRequests    = 50
	statusPeakBound   = 128 << 20 // growth of the heap's peak over its baseline; 55 MiB measured
	statusSettleBound = 4 << 20   // live heap after the burst over the baseline
)

var statusPages = []string{"/status", "/status?format=json", "/status?format=text", "/status?state=failing", "/status?target=mcp-00042"}

func TestStatusMemoryAt20000Endpoints(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 20,000 endpoints")
	}
	srv := httptest.NewServer(StatusHandler(cachedViews(t, statusEndpoints)))
	defer srv.Close()
	for _, page := range statusPages { // warm up the template and the server's buffers
		fetchDiscard(t, srv.URL+page)
	}
	// Collect garbage early, so that the peak is what the requests hold at
	// once rather than what the collector's pacing lets pile up.
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	base := liveHeap()
	peak := newPeakSampler()
	var wg sync.WaitGroup
	for i := range statusRequests {
		wg.Go(func() { fetchDiscard(t, srv.URL+statusPages[i%len(statusPages)]) })
	}
	wg.Wait()
	grown := peak.stop() - base
	after := settledHeap(base + statusSettleBound)
	t.Logf("%d endpoints, %d concurrent requests: live heap %d MiB before, peak %+d MiB, %+d KiB after",
		statusEndpoints, statusRequests, base>>20, int64(grown)>>20, (int64(after)-int64(base))>>10)
	if grown > statusPeakBound {
		t.Errorf("peak heap grew by %d MiB, bound %d MiB", grown>>20, statusPeakBound>>20)
	}
	if after > base+statusSettleBound {
		t.Errorf("live heap %d MiB after the burst, %d MiB before", after>>20, base>>20)
	}
}

// cachedViews holds n endpoints with a verified result each, and copies
// their views on every call as Collector.Views does, so that a rendering
// pays what it pays in production.
func cachedViews(t *testing.T, n int) Source {
	t.Helper()
	ca := testpki.NewCA("Bench Root")
	leaf := ca.Leaf("localhost")
	certs := []probe.CertInfo{probe.CertInfoOf(leaf.Cert, probe.RoleLeaf), probe.CertInfoOf(ca.Cert, probe.RoleRoot)}
	cfg := &config.Config{Interval: config.Duration(time.Hour)}
	for i := range n {
		cfg.Endpoints = append(cfg.Endpoints, config.Endpoint{Name: fmt.Sprintf("mcp-%05d", i), Address: fmt.Sprintf("127.0.0.1:%d", 1+i%60000)})
	}
	if err := cfg.Finish(); err != nil {
		t.Fatal(err)
	}
	s := make(copying, n)
	for i, ep := range cfg.Endpoints {
		s[i] = EndpointView{Endpoint: ep, Policy: cfg.Policy, Last: &probe.TLSResult{
			Time: time.Now(), Success: true, Verified: true, Version: tls.VersionTLS13, CipherSuite: tls.TLS_AES_128_GCM_SHA256,
			Phases:       probe.Phases{Connect: 100 * time.Microsecond, Handshake: 700 * time.Microsecond},
			Certificates: certs,
		}}
	}
	return s
}

type copying []EndpointView

func (c copying) Views() ([]EndpointView, []FileView) { return slices.Clone(c), []FileView{} }

// fetchDiscard reads a page without keeping it: the client's copies are
// not the exporter's memory.
func fetchDiscard(t *testing.T, url string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Error(err)
		return
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || n < 100 {
		t.Errorf("GET %s: %d, %d bytes, %v", url, resp.StatusCode, n, err)
	}
}

// liveHeap is the heap's live bytes after a full collection.
// settledHeap is the live heap once it is at most want, or its last
// reading after a second: the server's connection goroutines and a shared
// rendering's last waiters may still be letting go when the clients are done.
func settledHeap(want uint64) uint64 {
	h := liveHeap()
	for i := 0; i < 20 && h > want; i++ {
		time.Sleep(50 * time.Millisecond)
		h = liveHeap()
	}
	return h
}

func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// peakSampler records the largest heap (live objects and garbage not yet
// collected) seen while it runs, sampled every millisecond.
type peakSampler struct {
	done chan struct{}
	max  chan uint64
}

func newPeakSampler() *peakSampler {
	p := &peakSampler{done: make(chan struct{}), max: make(chan uint64)}
	go func() {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		var top uint64
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(s)
			top = max(top, s[0].Value.Uint64())
			select {
			case <-p.done:
				p.max <- top
				return
			case <-tick.C:
			}
		}
	}()
	return p
}

func (p *peakSampler) stop() uint64 {
	close(p.done)
	return <-p.max
}
