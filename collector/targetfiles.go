package collector

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/bmatcuk/doublestar/v4"
	"gopkg.in/yaml.v3"

	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/metrics"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

// maxTargetFileSize bounds one file_sd file: a million targets fit in it,
// and a file that is not one cannot exhaust memory.
const maxTargetFileSize = 64 << 20

// moduleLabel in a file_sd group's labels picks the module of its targets,
// as the multi-target pattern's relabelling would pass it to /probe.
const moduleLabel = "__param_module"

// targetFiles turns file_sd files into endpoints. mu serialises Apply with
// the watcher, so a reload and a file change never race.
type targetFiles struct {
	mu     sync.Mutex
	base   *config.Config                    // the config file's, before any target from files
	files  map[string]*sdFile                // by path, what each file held when it last parsed
	guards map[string]*config.AllowedTargets // by endpoint name, for those from files
	due    []time.Time                       // next check of each target_files entry

	statsMu sync.Mutex
	stats   map[string]fileStats
}

// sdFile is one file's last good content and the state it was read at.
type sdFile struct {
	stamp  fileStamp
	groups []sdGroup
	ok     bool
}

// fileStamp tells a changed file from an unchanged one without reading it:
// the link and what it points to, so certbot-style symlink swaps are seen.
type fileStamp struct {
	linkMod, mod   time.Time
	linkSize, size int64
}

// sdGroup is one entry of a file_sd file.
type sdGroup struct {
	Targets []string          `yaml:"targets"`
	Labels  map[string]string `yaml:"labels"`
}

type fileStats struct {
	ok                bool
	targets, rejected int
}

func newTargetFiles() *targetFiles {
	return &targetFiles{files: map[string]*sdFile{}, guards: map[string]*config.AllowedTargets{}, stats: map[string]fileStats{}}
}

// Apply switches to a new config, with the endpoints its target_files name
// added. Targets that did not change keep their results and schedule; new
// or changed ones are refreshed at once. On error nothing changes.
func (c *Collector) Apply(cfg *config.Config) error {
	c.tf.mu.Lock()
	defer c.tf.mu.Unlock()
	if err := c.apply(c.tf.expand(cfg, c.logger)); err != nil {
		return err
	}
	c.tf.base = cfg
	c.tf.due = make([]time.Time, len(cfg.TargetFiles))
	return nil
}

// watchTargetFiles checks each target_files entry every refresh_interval
// and applies the config again when a file changed, appeared or went.
func (c *Collector) watchTargetFiles(ctx context.Context) {
	timer := time.NewTimer(time.Second)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		timer.Reset(c.checkTargetFiles(time.Now()))
	}
}

// checkTargetFiles re-applies the config if a due entry's files changed,
// and returns how long to wait for the next due entry.
func (c *Collector) checkTargetFiles(now time.Time) time.Duration {
	c.tf.mu.Lock()
	defer c.tf.mu.Unlock()
	base := c.tf.base
	if base == nil || len(base.TargetFiles) == 0 {
		return time.Second // nothing to watch until a reload brings some
	}
	changed := false
	next := now.Add(time.Hour)
	for i, tf := range base.TargetFiles {
		if !now.Before(c.tf.due[i]) {
			c.tf.due[i] = now.Add(tf.RefreshInterval.D())
			changed = changed || c.tf.changed(tf)
		}
		next = minTime(next, c.tf.due[i])
	}
	if changed {
		if err := c.apply(c.tf.expand(base, c.logger)); err != nil {
			c.logger.Error("target files changed but their targets cannot be applied; the previous ones keep running", "err", err)
		}
	}
	return max(next.Sub(now), 10*time.Millisecond)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// changed reports whether the files of an entry are not those last read.
func (t *targetFiles) changed(tf config.TargetFiles) bool {
	for _, p := range matches(tf.Files) {
		f, ok := t.files[p]
		if !ok || f.stamp != stampOf(p) || f.stamp.recent() {
			return true
		}
	}
	return len(matches(tf.Files)) != t.matched(tf)
}

// matched counts the files read for an entry, to notice one that went.
func (t *targetFiles) matched(tf config.TargetFiles) int {
	n := 0
	for p := range t.files {
		for _, g := range tf.Files {
			if ok, _ := doublestar.PathMatch(g, p); ok {
				n++
				break
			}
		}
	}
	return n
}

// matches expands globs into sorted, distinct paths.
func matches(globs []string) []string {
	var out []string
	for _, g := range globs {
		ms, err := doublestar.FilepathGlob(g)
		if err == nil {
			out = append(out, ms...)
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// recentWrite is how long after its last modification a file is read
// again at every check: a second write within the same timestamp, of the
// same size, would otherwise go unseen.
const recentWrite = 2 * time.Second

func (s fileStamp) recent() bool { return time.Since(s.mod) < recentWrite }

func stampOf(p string) fileStamp {
	var s fileStamp
	if fi, err := os.Lstat(p); err == nil {
		s.linkMod, s.linkSize = fi.ModTime(), fi.Size()
	}
	if fi, err := os.Stat(p); err == nil {
		s.mod, s.size = fi.ModTime(), fi.Size()
	}
	return s
}

// expand returns cfg with an endpoint for each target of its target_files.
// Files that changed are read again; a file that no longer parses keeps the
// targets it had.
func (t *targetFiles) expand(cfg *config.Config, logger *slog.Logger) *config.Config {
	if len(cfg.TargetFiles) == 0 && len(t.files) == 0 {
		return cfg
	}
	files := map[string]*sdFile{}
	stats := map[string]fileStats{}
	guards := map[string]*config.AllowedTargets{}
	taken := map[string]bool{}
	for _, e := range cfg.Endpoints {
		taken[e.Name] = true
	}
	for _, g := range cfg.Files {
		taken[g.Name] = true
	}
	out := *cfg
	out.Endpoints = slices.Clone(cfg.Endpoints)
	for _, tf := range cfg.TargetFiles {
		for _, p := range matches(tf.Files) {
			f := files[p]
			if f == nil {
				f = t.read(p, logger)
				files[p] = f
			}
			st := stats[p]
			st.ok = f.ok
			for _, g := range f.groups {
				for _, target := range g.Targets {
					ep, guard, err := endpointFor(cfg, tf, g, target, taken)
					if err != nil {
						st.rejected++
						logger.Warn("target from file not probed", "path", p, "target", target, "err", err)
						continue
					}
					taken[ep.Name], guards[ep.Name] = true, guard
					out.Endpoints = append(out.Endpoints, ep)
					st.targets++
				}
			}
			stats[p] = st
		}
	}
	t.files, t.guards = files, guards
	t.statsMu.Lock()
	t.stats = stats
	t.statsMu.Unlock()
	return &out
}

// read parses p if it changed since the last read, keeping its previous
// content when it no longer parses.
func (t *targetFiles) read(p string, logger *slog.Logger) *sdFile {
	prev := t.files[p]
	stamp := stampOf(p)
	if prev != nil && prev.stamp == stamp && !stamp.recent() {
		return prev
	}
	groups, err := parseTargetFile(p)
	if err != nil {
		logger.Error("cannot load target file; its previous targets are kept", "path", p, "err", err)
		f := &sdFile{stamp: stamp}
		if prev != nil {
			f.groups = prev.groups
		}
		return f
	}
	return &sdFile{stamp: stamp, groups: groups, ok: true}
}

// parseTargetFile reads a file_sd file: YAML or JSON (a YAML subset), a
// list of groups of targets and labels.
func parseTargetFile(p string) ([]sdGroup, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxTargetFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxTargetFileSize {
		return nil, fmt.Errorf("larger than %d MiB", maxTargetFileSize>>20)
	}
	var groups []sdGroup
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&groups); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("not a file_sd list of {targets, labels}: %w", err)
	}
	return groups, nil
}

// endpointFor makes a target of a file an endpoint of its module: the
// group's __param_module label, or else the entry's module.
func endpointFor(cfg *config.Config, tf config.TargetFiles, g sdGroup, target string, taken map[string]bool) (
	config.Endpoint, *config.AllowedTargets, error) {
	name := tf.Module
	if v, ok := g.Labels[moduleLabel]; ok {
		name = v
	}
	m, ok := cfg.Modules[name]
	if !ok {
		return config.Endpoint{}, nil, fmt.Errorf("unknown module %q", name)
	}
	if taken[target] {
		return config.Endpoint{}, nil, fmt.Errorf("name %q is already a target", target)
	}
	ep, err := m.Endpoint(target, tf.Interval.D())
	if err != nil {
		return config.Endpoint{}, nil, err
	}
	return ep, &m.AllowedTargets, nil
}

// guard gives a target from a file its module's check of resolved
// addresses. Called under mu, by apply.
func (t *targetFiles) guard(target *probe.Target) {
	if g := t.guards[target.Endpoint.Name]; g != nil && g.RestrictsAddrs() {
		target.RestrictAddrs(g.AllowAddr)
	}
}

// render renders each file's state, with the exporter's own (renderLive),
// in path order.
func (t *targetFiles) render(ch *metrics.Samples) {
	t.statsMu.Lock()
	stats := maps.Clone(t.stats)
	t.statsMu.Unlock()
	for _, p := range slices.Sorted(maps.Keys(stats)) {
		s := stats[p]
		ch.Gauge(metrics.TargetFileOK, metrics.Bool(s.ok), p)
		ch.Gauge(metrics.TargetFileTargets, float64(s.targets), p)
		ch.Gauge(metrics.TargetFileRejected, float64(s.rejected), p)
	}
}
