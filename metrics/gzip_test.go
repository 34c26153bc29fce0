package metrics

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"math/rand/v2"
	"os/exec"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

// fleet is a collector's worth of expositions, changed the way refreshes
// change them, with the cache told of every change.
type fleet struct {
	rng     *rand.Rand
	cache   *GzipCache
	result  []*Exposition
	posture []*Exposition
	serial  []int // of each slot's leaf: same length when it changes
	fail    []bool
	now     time.Time
}

func newFleet(slots int, seed uint64) *fleet {
	f := &fleet{rng: rand.New(rand.NewPCG(seed, 1)), cache: NewGzipCache(slots), now: time.Unix(1.8e9, 0),
		result: make([]*Exposition, slots), posture: make([]*Exposition, slots), serial: make([]int, slots), fail: make([]bool, slots)}
	for i := range slots {
		f.serial[i] = 0x1000 + i%0x1000
		f.refresh(i)
	}
	return f
}

// refresh renders slot i again: a new run time always, now and then a
// reissued certificate (a serial of the same length, so the records that
// refer to its labels keep their bytes), a failure, or a posture result.
func (f *fleet) refresh(i int) {
	switch f.rng.IntN(8) {
	case 0:
		f.serial[i] = 0x1000 + f.rng.IntN(0xf000)
	case 1:
		f.fail[i] = !f.fail[i]
	case 2:
		old := f.posture[i]
		f.posture[i] = Render(func(ch *Samples) { ch.Gauge(TLSVersion, float64(f.rng.IntN(2)), fmt.Sprint("t", i), "TLS 1.2") })
		f.cache.Changed(i, old, f.posture[i])
	}
	name, serial, fail := fmt.Sprint("t", i), fmt.Sprintf("%X", f.serial[i]), f.fail[i]
	run := f.now.Add(time.Duration(f.rng.IntN(1000)) * time.Second)
	old := f.result[i]
	f.result[i] = Render(func(ch *Samples) {
		ch.Gauge(LastRun, float64(run.Unix()), name)
		if fail {
			ch.Gauge(ProbeSuccess, 0, name)
			ch.Gauge(ProbeError, 1, name, "TIMEOUT")
			return
		}
		ch.Gauge(ProbeSuccess, 1, name)
		for _, role := range []string{"leaf", "root"} {
			cert := []string{name, "", "endpoint", role, "CN", "Issuer", serial}
			*ch = append(*ch, Sample{Family: CertExpiry, Labels: cert, Deadline: f.now.Add(90 * 24 * time.Hour)})
			ch.Gauge(CertNotAfter, 1.8e9, cert...)
			ch.Gauge(CertNotBefore, 1.7e9, cert...)
		}
	})
	f.cache.Changed(i, old, f.result[i])
}

// scrape is what the collector loads: each slot's expositions in slot
// order, then one never cached.
func (f *fleet) scrape(gathered []*dto.MetricFamily) Scrape {
	var s Scrape
	for i := range f.result {
		for _, e := range []*Exposition{f.result[i], f.posture[i]} {
			if e != nil {
				s.Exps, s.Slots = append(s.Exps, e), append(s.Slots, int32(i))
			}
		}
	}
	live := Render(func(ch *Samples) { ch.Gauge(InsecureSkip, 0, "live") })
	s.Exps, s.Slots, s.Gathered = append(s.Exps, live), append(s.Slots, -1), gathered
	return s
}

func gatheredFamily(name string, v float64) *dto.MetricFamily {
	return &dto.MetricFamily{Name: proto.String(name), Help: proto.String("Gathered."), Type: dto.MetricType_GAUGE.Enum(),
		Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: proto.Float64(v)}}}}
}

// TestGzipWritesWhatWriteWrites holds every gzip scrape, segments cached or
// made again, to the text Write writes at the same moment, through rounds
// of refreshes: Go's gzip reader checks the CRC and length.
func TestGzipWritesWhatWriteWrites(t *testing.T) {
	for _, c := range []struct {
		slots, refreshes int
		gathered         []string
	}{
		{slots: 1, refreshes: 1, gathered: []string{"go_goroutines"}},
		{slots: 3000, refreshes: 40, gathered: []string{"aaa_first", "go_goroutines", "zzz_last"}},
		// A gathered family named as a catalogued one merges into it, and
		// writes its own header while the catalogued one has no samples.
		{slots: 1100, refreshes: 300, gathered: []string{"ssl_probe_error_info", "ssl_tls_version_info"}},
		{slots: 0, gathered: []string{"go_goroutines"}},
	} {
		t.Run(fmt.Sprintf("%d slots", c.slots), func(t *testing.T) {
			f := newFleet(c.slots, uint64(c.slots))
			for round := range 6 {
				var gathered []*dto.MetricFamily
				for _, name := range c.gathered {
					gathered = append(gathered, gatheredFamily(name, float64(round)))
				}
				for range min(c.refreshes, c.slots) {
					f.refresh(f.rng.IntN(c.slots))
				}
				f.now = f.now.Add(15 * time.Second)
				s := f.scrape(gathered)
				var want bytes.Buffer
				if err := Write(&want, s.Exps, s.Gathered, f.now); err != nil {
					t.Fatal(err)
				}
				body, err := f.cache.Gzip(func() (Scrape, error) { return s, nil }, f.now)
				if err != nil {
					t.Fatal(err)
				}
				if got := gunzip(t, body); got != want.String() {
					t.Fatalf("round %d: gzip scrape differs from Write's text:\n%s", round, firstDifference(got, want.String()))
				}
			}
		})
	}
}

// TestGzipMakesOnlyChangedSegments: a scrape with nothing changed makes
// again only what changes at every scrape (countdowns, the never-cached
// slot, gathered families), and a refresh adds its own block's segments.
func TestGzipMakesOnlyChangedSegments(t *testing.T) {
	f := newFleet(3*blockSlots, 7)
	scrape := func() int {
		s := f.scrape([]*dto.MetricFamily{gatheredFamily("go_goroutines", 1)})
		if _, err := f.cache.Gzip(func() (Scrape, error) { return s, nil }, f.now); err != nil {
			t.Fatal(err)
		}
		return f.cache.made
	}
	first := scrape()
	steady := scrape()
	f.refresh(blockSlots + 5)
	f.refresh(blockSlots + 6)
	afterRefresh := scrape()
	// Steady: 3 expiry blocks, the live one of each family, 1 gathered.
	if steady >= first/4 || steady > 3+len(all)+1 {
		t.Errorf("a scrape with nothing changed made %d segments (the first made %d)", steady, first)
	}
	if afterRefresh <= steady || afterRefresh > steady+len(all) {
		t.Errorf("two refreshes in one block made %d segments, want a few more than %d", afterRefresh, steady)
	}
}

// TestGzipAgreesWithGzipTool: the body is one gzip member another
// implementation than Go's reads, checks and decompresses to the same text.
func TestGzipAgreesWithGzipTool(t *testing.T) {
	tool, err := exec.LookPath("gzip")
	if err != nil {
		t.Fatalf("gzip (the tool) is needed: %v", err)
	}
	f := newFleet(2*blockSlots+10, 3)
	s := f.scrape([]*dto.MetricFamily{gatheredFamily("go_goroutines", 1)})
	body, err := f.cache.Gzip(func() (Scrape, error) { return s, nil }, f.now)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(tool, "-d", "-c")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("gzip -d: %v", err)
	}
	if got := gunzip(t, body); string(out) != got {
		t.Errorf("gzip -d and Go's reader differ:\n%s", firstDifference(string(out), got))
	}
}

func gunzip(t *testing.T, body []byte) string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	zr.Multistream(false) // one member, as Prometheus reads it
	text, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("reading the gzip body: %v", err)
	}
	return string(text)
}

func firstDifference(got, want string) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	from := max(0, i-200)
	return fmt.Sprintf("at byte %d\ngot:  %q\nwant: %q", i, got[from:min(len(got), i+200)], want[from:min(len(want), i+200)])
}
