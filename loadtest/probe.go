package main

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// measureProbe is -probe: total requests to /probe?module=tls&target=…
// over the listeners in turn, at the exporter's concurrency (and
// probe_concurrency), paced as the floor is, against an exporter that
// refreshes nothing itself. The harness's HTTP client runs in the same
// process, so its CPU counts as the exporter's: an upper bound.
func measureProbe(p *pki, l *listeners, concurrency, total int, interval time.Duration) (cost, error) {
	cfg, err := configFor(p, l.addrs, concurrency, time.Hour, 0)
	if err != nil {
		return cost{}, err
	}
	e, err := startExporter(cfg) // not run: no refreshes of its own
	if err != nil {
		return cost{}, err
	}
	defer e.stop()
	base := strings.TrimSuffix(e.url, "/metrics") + "/probe?module=tls&target="
	probe := func(addr string) error {
		body, err := httpGet(base + url.QueryEscape(addr))
		if err != nil {
			return err
		}
		for line := range strings.SplitSeq(body, "\n") {
			if strings.HasPrefix(line, "ssl_certificate_verified{") && strings.HasSuffix(line, " 1") {
				return nil
			}
		}
		return fmt.Errorf("/probe of %s did not verify:\n%s", addr, body)
	}
	if err := probe(l.addrs[0]); err != nil { // warm up, and check the module works
		return cost{}, err
	}
	return runConcurrently(selfMeter(l.pids()), l.addrs, concurrency, schedule(len(l.addrs), total, interval), total, probe)
}
