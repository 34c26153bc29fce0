package collector

import (
	"crypto/tls"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
)

func TestParseShard(t *testing.T) {
	cases := []struct {
		in      string
		want    Shard
		wantErr string
	}{
		{"0/1", Shard{0, 1}, ""},
		{"2/3", Shard{2, 3}, ""},
		{"0/3", Shard{0, 3}, ""},
		{"3/3", Shard{}, "0 <= i < n"},
		{"-1/3", Shard{}, "0 <= i < n"},
		{"0/0", Shard{}, "0 <= i < n"},
		{"1", Shard{}, "want i/n"},
		{"", Shard{}, "want i/n"},
		{"a/3", Shard{}, "replica index"},
		{"1/b", Shard{}, "replica count"},
		{"1/2/3", Shard{}, "replica count"},
		{"999/1000", Shard{999, 1000}, ""},
		{"0/1001", Shard{}, "at most 1000 replicas"},
		{"0/1000000000", Shard{}, "at most 1000 replicas"},
	}
	for _, tc := range cases {
		got, err := ParseShard(tc.in)
		switch {
		case tc.wantErr == "" && (err != nil || got != tc.want):
			t.Errorf("ParseShard(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("ParseShard(%q) error %v, want one containing %q", tc.in, err, tc.wantErr)
		}
	}
}

func names(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("mcp-%d.example.com", i)
	}
	return out
}

// Every target has exactly one owner, and the shares are about even.
func TestShardsPartitionTargets(t *testing.T) {
	targets := names(6000)
	for _, n := range []int{1, 2, 3, 5} {
		share := make([]int, n)
		for _, name := range targets {
			owners := 0
			for i := range n {
				if (Shard{i, n}).Owns(name) {
					owners++
					share[i]++
				}
			}
			if owners != 1 {
				t.Fatalf("n=%d: %s has %d owners", n, name, owners)
			}
		}
		fair := len(targets) / n
		for i, got := range share {
			if got < fair*8/10 || got > fair*12/10 {
				t.Errorf("n=%d: replica %d owns %d targets, fair share %d", n, i, got, fair)
			}
		}
	}
}

// Going from 3 to 4 replicas moves targets only to the new replica, about a
// quarter of them, so that three quarters keep their history on their
// replica.
func TestAddingAReplicaMovesOnlyToIt(t *testing.T) {
	targets := names(6000)
	moved := 0
	for _, name := range targets {
		before, after := ownerOf(name, 3), ownerOf(name, 4)
		if before != after {
			moved++
			if after != 3 {
				t.Fatalf("%s moved from replica %d to %d, not to the new one", name, before, after)
			}
		}
	}
	if moved < len(targets)/5 || moved > len(targets)*3/10 {
		t.Errorf("%d of %d targets moved, want about a quarter", moved, len(targets))
	}
}

// Three replicas on one config refresh every endpoint and file group
// exactly once between them: each test server counts its handshakes, and
// the replicas' metrics add up to the whole config with no target twice.
func TestThreeReplicasProbeEveryTargetOnce(t *testing.T) {
	const endpoints, groups, replicas = 24, 6, 3
	ca := testpki.NewCA("Root")
	dir := t.TempDir()
	caFile := testpki.WriteFile(t, dir, "ca.pem", ca.PEM())
	var yml strings.Builder
	yml.WriteString("interval: 1h\nendpoints:\n")
	handshakes := make([]*atomic.Int64, endpoints)
	for i := range handshakes {
		n := new(atomic.Int64)
		handshakes[i] = n
		addr := testpki.Serve(t, &tls.Config{
			Certificates:     []tls.Certificate{ca.Leaf("localhost").TLS()},
			VerifyConnection: func(tls.ConnectionState) error { n.Add(1); return nil },
		})
		fmt.Fprintf(&yml, "  - {name: ep-%d, address: %q, posture: false, tls_config: {ca_file: %q, server_name: localhost}}\n", i, addr, caFile)
	}
	yml.WriteString("files:\n")
	for i := range groups {
		path := testpki.WriteFile(t, dir, fmt.Sprintf("g%d.pem", i), ca.PEM())
		fmt.Fprintf(&yml, "  - {name: files-%d, paths: [%q]}\n", i, path)
	}
	cfg, err := config.Parse([]byte(yml.String()), "test.yml")
	if err != nil {
		t.Fatal(err)
	}

	colls := make([]*Collector, replicas)
	for i := range colls {
		colls[i] = runCollector(t, cfg, WithShard(Shard{i, replicas}))
	}
	seen := map[string]int{} // target -> replicas that export it
	eventually(t, "every target refreshed by some replica", func() bool {
		var total uint64
		for _, c := range colls {
			total += c.Refreshes()
		}
		return total >= endpoints+groups
	})
	eventually(t, "every test server saw its handshake", func() bool {
		for _, n := range handshakes {
			if n.Load() == 0 {
				return false
			}
		}
		return true
	})
	var owned [2]float64
	for i, c := range colls {
		f := scrape(t, c)
		mine := f.LabelValues("ssl_probe_last_run_timestamp_seconds", "target", nil)
		if len(mine) == 0 {
			t.Errorf("replica %d owns no target", i)
		}
		for _, target := range mine {
			seen[target]++
		}
		owned[0] += f.One(t, "mcp_cert_exporter_targets", map[string]string{"kind": "endpoint"})
		owned[1] += f.One(t, "mcp_cert_exporter_targets", map[string]string{"kind": "file"})
	}
	for i, n := range handshakes {
		if got := n.Load(); got != 1 {
			t.Errorf("endpoint ep-%d was probed %d times, want once", i, got)
		}
	}
	if len(seen) != endpoints+groups {
		t.Errorf("replicas export %d targets, want %d", len(seen), endpoints+groups)
	}
	for target, n := range seen {
		if n != 1 {
			t.Errorf("%s is exported by %d replicas", target, n)
		}
	}
	if owned != [2]float64{endpoints, groups} {
		t.Errorf("replicas own %v endpoints and files, want %d and %d", owned, endpoints, groups)
	}
}
