package metrics

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"math/rand/v2"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

// fleet is a collector's worth of expositions, stored through the cache
// the way refreshes store them.
type fleet struct {
	rng     *rand.Rand
	cache   *GzipCache
	result  []atomic.Pointer[Exposition]
	posture []atomic.Pointer[Exposition]
	serial  []int // of each slot's leaf: same length when it changes
	fail    []bool
	now     time.Time
}

func newFleet(slots int, seed uint64) *fleet {
	f := &fleet{rng: rand.New(rand.NewPCG(seed, 1)), cache: NewGzipCache(slots), now: time.Unix(1.8e9, 0),
		result: make([]atomic.Pointer[Exposition], slots), posture: make([]atomic.Pointer[Exposition], slots),
		serial: make([]int, slots), fail: make([]bool, slots)}
	for i := range slots {
		f.serial[i] = 0x1000 + i%0x1000
		f.refresh(i)
	}
	return f
}

// refresh renders slot i again: a new run time always, now and then a
// reissued certificate, a failure, or a posture result.
func (f *fleet) refresh(i int) {
	switch f.rng.IntN(8) {
	case 0:
		f.reissue(i)
		return
	case 1:
		f.fail[i] = !f.fail[i]
	case 2:
		v := float64(f.rng.IntN(2))
		f.cache.Store(i, &f.posture[i], Render(func(ch *Samples) { ch.Gauge(TLSVersion, v, fmt.Sprint("t", i), "TLS 1.2") }))
	}
	f.store(i)
}

// reissue gives slot i's leaf a new serial of the same length, so the
// records that refer to its labels keep their bytes.
func (f *fleet) reissue(i int) {
	f.serial[i] = 0x1000 + (f.serial[i]-0x1000+1+f.rng.IntN(0xeffe))%0xf000
	f.store(i)
}

func (f *fleet) store(i int) {
	name, serial, fail := fmt.Sprint("t", i), fmt.Sprintf("%X", f.serial[i]), f.fail[i]
	run := f.now.Add(time.Duration(f.rng.IntN(1000)) * time.Second)
	f.cache.Store(i, &f.result[i], Render(func(ch *Samples) {
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
	}))
}

// load is what the collector loads: each slot's expositions in slot
// order, then one never cached.
func (f *fleet) load() (Scrape, error) {
	var s Scrape
	for i := range f.result {
		for _, e := range []*Exposition{f.result[i].Load(), f.posture[i].Load()} {
			if e != nil {
				s.Exps, s.Slots = append(s.Exps, e), append(s.Slots, int32(i))
			}
		}
	}
	live := Render(func(ch *Samples) { ch.Gauge(InsecureSkip, 0, "live") })
	s.Exps, s.Slots = append(s.Exps, live), append(s.Slots, -1)
	return s, nil
}

// scrape makes a gzip scrape of the fleet, checked by gzipScrape.
func (f *fleet) scrape(t *testing.T, gathered []*dto.MetricFamily) {
	t.Helper()
	gzipScrape(t, f.cache, f.load, gathered, f.now)
}

// gzipScrape makes a gzip scrape of what load returns and holds it to the
// text Write writes from the same expositions: Go's gzip reader checks the
// CRC and length.
func gzipScrape(t *testing.T, c *GzipCache, load func() (Scrape, error), gathered []*dto.MetricFamily, now time.Time) {
	t.Helper()
	var loaded Scrape
	body, err := c.Gzip(func() (Scrape, error) {
		var err error
		loaded, err = load()
		return loaded, err
	}, gathered, now)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := Write(&want, loaded.Exps, gathered, now); err != nil {
		t.Fatal(err)
	}
	if got := gunzip(t, body); got != want.String() {
		t.Fatalf("gzip scrape differs from Write's text:\n%s", firstDifference(got, want.String()))
	}
}

func gatheredFamily(name string, v float64) *dto.MetricFamily {
	return &dto.MetricFamily{Name: proto.String(name), Help: proto.String("Gathered."), Type: dto.MetricType_GAUGE.Enum(),
		Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: proto.Float64(v)}}}}
}

// TestGzipWritesWhatWriteWrites holds every gzip scrape, segments cached or
// made again, to Write's text, through rounds of refreshes.
func TestGzipWritesWhatWriteWrites(t *testing.T) {
	for _, c := range []struct {
		slots, refreshes int
		gathered         []string
	}{
		{slots: 1, refreshes: 1, gathered: []string{"go_goroutines"}},
		{slots: 3000, refreshes: 40, gathered: []string{"aaa_first", "go_goroutines", "zzz_last"}},
		// A gathered family named as a catalogued one merges into it, and
		// writes its own header when the catalogued one has no samples
		// (ssl_file_error_info: the fleet has none).
		{slots: 1100, refreshes: 300, gathered: []string{"ssl_file_error_info", "ssl_probe_error_info", "ssl_tls_version_info"}},
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
				f.scrape(t, gathered)
			}
		})
	}
}

// TestGzipMakesOnlyChangedSegments: a scrape with nothing changed makes
// again only what changes at every scrape (countdowns, the never-cached
// slot, gathered families); a reissued certificate adds its own block's
// segments of the families whose text changed, and shows in the text.
func TestGzipMakesOnlyChangedSegments(t *testing.T) {
	f := newFleet(3*blockSlots, 7)
	gathered := []*dto.MetricFamily{gatheredFamily("go_goroutines", 1)}
	scrape := func() int { f.scrape(t, gathered); return f.cache.made }
	first := scrape()
	steady := scrape()
	f.reissue(blockSlots + 5)
	afterReissue := scrape()
	// Steady: 3 expiry blocks, the live one of each family, 1 gathered.
	if steady >= first/4 || steady > 3+len(all)+1 {
		t.Errorf("a scrape with nothing changed made %d segments (the first made %d)", steady, first)
	}
	// last_run, not_after, not_before: 3 more (expiry is made anyway).
	if afterReissue != steady+3 {
		t.Errorf("a reissue in one block made %d segments, want %d", afterReissue, steady+3)
	}
	// A retired cache serves the same text and reuses nothing but the
	// families' headers, which never change.
	f.cache.Retire()
	if retired := scrape(); retired != first-len(all) || scrape() != retired {
		t.Errorf("a retired cache made %d segments, want all %d but the headers", retired, first-len(all))
	}
}

// A store waits while a scrape loads, so that no target's text in a scrape
// mixes segments cached before the store with segments made after it.
func TestGzipStoreWaitsForTheLoad(t *testing.T) {
	f := newFleet(2*blockSlots, 5)
	f.scrape(t, nil) // caches the certificate families
	done := make(chan struct{})
	defer func() { <-done }()
	gzipScrape(t, f.cache, func() (Scrape, error) {
		go func() { f.reissue(3); close(done) }()
		select {
		case <-done:
			t.Error("a store ran while the scrape loaded")
		case <-time.After(50 * time.Millisecond): // time for it to run, were it not held back
		}
		return f.load()
	}, nil, f.now)
}

// Expositions the cache cannot place (out of slot order, a slot it does
// not know, an uncached one before cached ones) are written uncached, and
// one that Join left with two groups of a family is written whole.
func TestGzipUnusualScrapes(t *testing.T) {
	a := Render(func(ch *Samples) { ch.Gauge(LastRun, 1, "a"); ch.Gauge(ProbeSuccess, 1, "a") })
	b := Render(func(ch *Samples) { ch.Gauge(LastRun, 2, "b") })
	joined := Join(a, b)
	for name, s := range map[string]Scrape{
		"out of order":       {Exps: []*Exposition{a, b}, Slots: []int32{1500, 3}},
		"unknown slot":       {Exps: []*Exposition{a, b}, Slots: []int32{0, 99999}},
		"uncached first":     {Exps: []*Exposition{a, b}, Slots: []int32{-1, 3}},
		"slots missing":      {Exps: []*Exposition{a, b}},
		"joined, one family": {Exps: []*Exposition{joined}, Slots: []int32{0}},
	} {
		t.Run(name, func(t *testing.T) {
			cache := NewGzipCache(2 * blockSlots)
			now := time.Unix(1.8e9, 0)
			for range 2 { // made, then cached where it can be
				gzipScrape(t, cache, func() (Scrape, error) { return s, nil }, nil, now)
			}
		})
	}
}

// A gathered family Write cannot write fails a gzip scrape the same way.
func TestGzipFailsOnBadGatheredFamily(t *testing.T) {
	bad := &dto.MetricFamily{Name: proto.String("go_bad"), Help: proto.String("No metrics."), Type: dto.MetricType_GAUGE.Enum()}
	wantErr := Write(io.Discard, nil, []*dto.MetricFamily{bad}, time.Now())
	_, err := NewGzipCache(0).Gzip(func() (Scrape, error) { return Scrape{}, nil }, []*dto.MetricFamily{bad}, time.Now())
	if wantErr == nil || err == nil || err.Error() != wantErr.Error() {
		t.Errorf("gzip error %v, Write's %v", err, wantErr)
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
	body, err := f.cache.Gzip(f.load, []*dto.MetricFamily{gatheredFamily("go_goroutines", 1)}, f.now)
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
