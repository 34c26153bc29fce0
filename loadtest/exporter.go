package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/model"

	"github.com/mcpcert/mcp_cert_exporter/collector"
	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/web"
)

// exporter is the real collector and metrics handler, wired as main wires
// them, in this process.
type exporter struct {
	coll   *collector.Collector
	url    string
	n      int
	paced  bool // refreshes every interval, not back to back
	srv    *http.Server
	cancel context.CancelFunc
	done   chan struct{}
}

// configFor writes the config a user would: one endpoint per listener,
// trusting the test root by ca_file, refreshed every interval (1ms: back to
// back, so that every cycle is a full refresh of all endpoints). Posture
// scans are off unless postureInterval is set (-posture): they run on their
// own schedule and are not part of the refresh cost the harness measures.
func configFor(p *pki, addrs []string, concurrency int, interval, postureInterval time.Duration) (*config.Config, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "interval: %s\ntimeout: 10s\nconcurrency: %d\nprobe_concurrency: %d\n", model.Duration(interval), concurrency, concurrency)
	// The module /probe uses with -probe: the same trust and name as the endpoints.
	fmt.Fprintf(&b, "modules: {tls: {prober: tls, allowed_targets: {cidrs: [127.0.0.0/8]}, tls_config: {ca_file: %q, server_name: localhost}}}\n", p.caFile)
	posture := postureInterval > 0
	if posture {
		fmt.Fprintf(&b, "posture_interval: %s\n", model.Duration(postureInterval))
	}
	b.WriteString("endpoints:\n")
	for i, a := range addrs {
		fmt.Fprintf(&b, "  - {name: ep-%05d, address: %q, posture: %t, tls_config: {ca_file: %q, server_name: localhost}}\n", i, a, posture, p.caFile)
	}
	return config.Parse([]byte(b.String()), "loadtest.yml")
}

func startExporter(cfg *config.Config) (*exporter, error) {
	logger := slog.New(slog.DiscardHandler)
	e := &exporter{coll: collector.New(logger), n: len(cfg.Endpoints), done: make(chan struct{}),
		paced: schedule(1, 1, cfg.Interval.D()) != nil}
	if err := e.coll.Apply(cfg); err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(versioncollector.NewCollector("mcp_cert_exporter"), collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("/metrics", web.MetricsHandler(e.coll, reg, logger))
	mux.Handle("/probe", e.coll.ProbeHandler(logger))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	e.url = "http://" + ln.Addr().String() + "/metrics"
	e.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := e.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			panic(fmt.Sprintf("metrics server: %v", err))
		}
	}()
	return e, nil
}

// run starts the refreshes: the first of every endpoint at once.
func (e *exporter) run() {
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	go func() { e.coll.Run(ctx); close(e.done) }()
}

func (e *exporter) stop() error {
	if e.cancel != nil {
		e.cancel()
		<-e.done
	}
	return e.srv.Close()
}

// waitRefreshes blocks until the collector has completed total refreshes.
// It looks every 2ms, or every 100ms when refreshes are paced by an
// interval: the harness's CPU counts as the exporter's, and 2ms polls over
// minutes of paced refreshes would add about as much as a handshake per
// refresh.
func (e *exporter) waitRefreshes(total uint64, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	poll := 2 * time.Millisecond
	if e.paced {
		poll = 100 * time.Millisecond
	}
	for e.coll.Refreshes() < total {
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d refreshes after %s", e.coll.Refreshes(), total, limit)
		}
		time.Sleep(poll)
	}
	return nil
}

// failing counts endpoints whose last refresh found a problem: the load
// test is only meaningful if every handshake verified.
func (e *exporter) failing() (int, string) {
	n, first := 0, ""
	for _, s := range web.Report(e.coll, web.StatusQuery{Limit: -1}, time.Now()).Targets {
		if len(s.Problems) > 0 {
			if n == 0 {
				first = s.Name + ": " + s.Problems[0].Reason + " " + s.Problems[0].Detail
			}
			n++
		}
	}
	return n, first
}

// scrapeResult is the latency of scrapes made while refreshes run.
type scrapeResult struct {
	scrapers  int
	latencies []time.Duration
	bytes     int
	window    cost // the process, refreshes and scrapes together
	refreshes uint64
}

func (s scrapeResult) quantile(q float64) time.Duration {
	l := slices.Clone(s.latencies)
	slices.Sort(l)
	return l[min(int(q*float64(len(l))), len(l)-1)]
}

// scrape makes total scrapes from scrapers concurrent clients, as
// Prometheus sends them (gzip), while the collector keeps refreshing: one
// started every every, or back to back when every is 0.
func (e *exporter) scrape(m meter, scrapers, total int, every time.Duration) (scrapeResult, error) {
	res := scrapeResult{scrapers: scrapers}
	client := &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: scrapers}}
	defer client.CloseIdleConnections() // so that the counts after the scrapes are the exporter's
	var mu sync.Mutex
	before := e.coll.Refreshes()
	targets := slices.Repeat([]string{e.url}, total)
	var due []time.Duration
	for i := range total {
		if every > 0 {
			due = append(due, time.Duration(i)*every)
		}
	}
	c, err := runConcurrently(m, targets, scrapers, due, total, func(url string) error {
		start := time.Now()
		n, err := get(client, url)
		mu.Lock()
		res.latencies = append(res.latencies, time.Since(start))
		res.bytes = n
		mu.Unlock()
		return err
	})
	res.window, res.refreshes = c, e.coll.Refreshes()-before
	return res, err
}

func get(client *http.Client, url string) (int, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept-Encoding", "gzip")
	req.Header.Set("Accept", "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %s", resp.Status)
	}
	return int(n), err
}

// checkScrape parses one scrape and checks that every endpoint is in it,
// verified.
func (e *exporter) checkScrape() error {
	req, err := http.NewRequest(http.MethodGet, e.url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept-Encoding", "gzip")
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		return fmt.Errorf("scrape is not gzip: %w", err)
	}
	verified := 0
	sc := bufio.NewScanner(zr)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if bytes.HasPrefix(line, []byte("ssl_certificate_verified{")) && bytes.HasSuffix(line, []byte(" 1")) {
			verified++
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading scrape: %w", err)
	}
	if verified != e.n {
		return fmt.Errorf("scrape shows %d of %d endpoints verified", verified, e.n)
	}
	return nil
}
