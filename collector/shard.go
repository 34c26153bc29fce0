package collector

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/cespare/xxhash/v2"

	"github.com/mcpcert/mcp_cert_exporter/config"
)

// Shard is one replica's share of the targets: replica Index (0-based) of
// Count. The zero value and 0/1 own every target.
type Shard struct {
	Index, Count int
}

// MaxShards bounds the replica count: placing a target costs one hash per
// replica, at every reload.
const MaxShards = 1000

// ParseShard reads "i/n": replica i of n, 0 <= i < n.
func ParseShard(s string) (Shard, error) {
	is, ns, ok := strings.Cut(s, "/")
	if !ok {
		return Shard{}, fmt.Errorf("shard %q: want i/n, replica i (0-based) of n replicas, such as 0/3", s)
	}
	i, err := strconv.Atoi(is)
	if err != nil {
		return Shard{}, fmt.Errorf("shard %q: replica index: %w", s, err)
	}
	n, err := strconv.Atoi(ns)
	if err != nil {
		return Shard{}, fmt.Errorf("shard %q: replica count: %w", s, err)
	}
	if n < 1 || i < 0 || i >= n {
		return Shard{}, fmt.Errorf("shard %q: want 0 <= i < n and n >= 1", s)
	}
	if n > MaxShards {
		return Shard{}, fmt.Errorf("shard %q: at most %d replicas; placement hashes each target once per replica", s, MaxShards)
	}
	return Shard{Index: i, Count: n}, nil
}

func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.Index, max(s.Count, 1)) }

// Set makes *Shard a flag value.
func (s *Shard) Set(v string) error {
	p, err := ParseShard(v)
	if err == nil {
		*s = p
	}
	return err
}

// Owns reports whether the target called name is this replica's. Targets
// are placed by rendezvous hashing of their name: every replica computes
// the same owner from the name alone, whatever the order of the config, and
// going from n to n+1 replicas moves only the targets that the new replica
// wins, about 1/(n+1) of them.
func (s Shard) Owns(name string) bool {
	if s.Count <= 1 {
		return true
	}
	return ownerOf(name, s.Count) == s.Index
}

func ownerOf(name string, count int) int {
	owner, best := 0, uint64(0)
	d := xxhash.New()
	for i := range count {
		d.Reset()
		_, _ = d.WriteString(strconv.Itoa(i)) // writes to a hash never fail
		_, _ = d.WriteString("\x00")
		_, _ = d.WriteString(name)
		if h := d.Sum64(); i == 0 || h > best {
			owner, best = i, h
		}
	}
	return owner
}

// filter keeps the endpoints and file groups this replica owns.
func (s Shard) filter(cfg *config.Config) *config.Config {
	if s.Count <= 1 {
		return cfg
	}
	out := *cfg
	out.Endpoints = slices.DeleteFunc(slices.Clone(cfg.Endpoints), func(e config.Endpoint) bool { return !s.Owns(e.Name) })
	out.Files = slices.DeleteFunc(slices.Clone(cfg.Files), func(g config.FileGroup) bool { return !s.Owns(g.Name) })
	return &out
}

// Option configures a Collector.
type Option func(*Collector)

// WithShard makes the collector refresh and export only its shard's targets.
func WithShard(s Shard) Option {
	return func(c *Collector) { c.shard = s }
}
