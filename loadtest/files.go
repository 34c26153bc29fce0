package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
)

// measureFiles writes n certificate files (leaf and root, as a fullchain
// bundle) and has the exporter read them as one group: the first read, then
// rescans that find nothing changed.
func measureFiles(w io.Writer, dir string, n, rescans int) (err error) {
	ca := testpki.NewCA("Loadtest Files Root")
	bundle := testpki.Bundle(ca.Leaf("localhost"), ca)
	old := time.Now().Add(-time.Hour) // past the reader's racy window, as files usually are
	for i := range n {
		p := filepath.Join(dir, "certs", fmt.Sprintf("%03d", i%100), fmt.Sprintf("%d.pem", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, bundle, 0o600); err != nil {
			return err
		}
		if err := os.Chtimes(p, old, old); err != nil {
			return err
		}
	}
	yml := fmt.Sprintf("interval: 1ms\nfiles:\n  - {name: certs, paths: [%q]}\n", filepath.Join(dir, "certs", "**", "*.pem"))
	cfg, err := config.Parse([]byte(yml), "files.yml")
	if err != nil {
		return err
	}
	e, err := startExporter(cfg)
	if err != nil {
		return err
	}
	defer func() {
		if stopErr := e.stop(); err == nil {
			err = stopErr
		}
	}()
	m := meter{cpu: func() (time.Duration, error) { return selfCPU(), nil }}
	first, err := timed(m, n, func() error {
		e.run()
		return e.waitRefreshes(1, 10*time.Minute)
	})
	if err != nil {
		return err
	}
	rescan, err := timed(m, n*rescans, func() error { return e.waitRefreshes(uint64(1+rescans), 10*time.Minute) })
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%-22s %6.1f µs CPU/file, %s wall for %d files\n", "files, first read", us(first.perOp()),
		first.wall.Round(time.Millisecond), n)
	fmt.Fprintf(w, "%-22s %6.1f µs CPU/file, %s wall for %d files (mean of %d rescans, nothing changed)\n",
		"files, rescan", us(rescan.perOp()), (rescan.wall / time.Duration(rescans)).Round(time.Millisecond), n, rescans)
	return nil
}

// timed measures f as ops operations.
func timed(m meter, ops int, f func() error) (cost, error) {
	stop, err := m.start()
	if err != nil {
		return cost{}, err
	}
	if err := f(); err != nil {
		return cost{}, err
	}
	return stop(ops)
}
