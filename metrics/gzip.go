package metrics

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/flate"
	dto "github.com/prometheus/client_model/go"
)

// A gzip scrape of 100,000 endpoints is about 240 MB of text compressed to
// 8 MB, and most of it is the same at every scrape: a certificate's info,
// not_after and not_before lines change only when the certificate does.
// So the body is cut into segments, each one family of one block of
// targets compressed on its own (raw deflate ending in a sync flush, so
// that segments join into one stream), and a scrape compresses again only
// the segments whose text changed since it was cached, on every core, then
// joins the segments and combines their CRCs into one gzip member.
// Segments that hold countdowns (ssl_certificate_expiry_seconds) change at
// every scrape and are never cached.

// blockSlots is how many targets a segment covers: large enough that each
// compresses well on its own (a segment costs about 100 bytes of Huffman
// tables and flush), small enough that a refresh dirties little.
const blockSlots = 1024

// GzipCache keeps the compressed segments of the last gzip scrape. Its
// owner numbers its targets 0..slots-1 and stores every new exposition of
// a target through Store; a changed target set (a reload) takes a new
// cache and retires the old one.
type GzipCache struct {
	slots, families int
	// versions counts the changes of each segment's text: Store adds, a
	// cached segment is good while its version is the one it was made at.
	versions []atomic.Uint32
	// loading makes a store (its pointer and its versions) and a scrape's
	// reading of versions and pointers exclusive, so that every target a
	// scrape writes is its text of one moment: stores share it, a scrape
	// holds it only while it loads.
	loading sync.RWMutex
	retired atomic.Bool
	mu      sync.Mutex // one scrape at a time uses segs and headers
	segs    []segment
	headers []segment // each family's HELP and TYPE, compressed once
	made    int       // segments the last scrape compressed, for tests
}

// NewGzipCache is a cache for slots targets' expositions.
func NewGzipCache(slots int) *GzipCache {
	blocks := (slots + blockSlots - 1) / blockSlots
	c := &GzipCache{slots: slots, families: len(all)}
	c.versions = make([]atomic.Uint32, blocks*c.families)
	c.segs = make([]segment, len(c.versions))
	c.headers = make([]segment, c.families)
	return c
}

// segment is compressed text: raw deflate ending in a sync flush, with the
// text's CRC-32 and length, and crcShift(length) for combining CRCs.
type segment struct {
	z         []byte // nil for no text
	crc       uint32
	shift     uint32
	n         int
	version   uint32 // of the text it was made from, when cached
	cached    bool
	countdown bool // holds countdowns, so it is made at every scrape
}

func (c *GzipCache) index(slot int, family uint16) int {
	return slot/blockSlots*c.families + int(family)
}

// Store stores e in p, the pointer a scrape loads slot's exposition from,
// and gives a new version to the segments of every family whose text
// changed, so that the next scrape makes them again. The caller orders the
// stores to each p. Comparing the text, not the records, matters: a
// reference to a changed label block can keep its bytes.
func (c *GzipCache) Store(slot int, p *atomic.Pointer[Exposition], e *Exposition) {
	if c == nil || slot < 0 || slot >= c.slots {
		p.Store(e)
		return
	}
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	changed := sc.changed(p.Load(), e)
	c.loading.RLock()
	defer c.loading.RUnlock()
	p.Store(e)
	for _, f := range changed {
		if int(f) < c.families {
			c.versions[c.index(slot, f)].Add(1)
		}
	}
}

// Retire tells a cache that its owner numbers its targets for another
// cache now: scrapes still under way on this one use none of its segments.
func (c *GzipCache) Retire() { c.retired.Store(true) }

// scratch is what Store needs to compare two expositions, recycled.
type scratch struct {
	a, b     bytes.Buffer
	families []uint16
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// changed lists the families whose text differs between old and new
// (either may be nil).
func (sc *scratch) changed(old, new *Exposition) []uint16 {
	sc.families = sc.families[:0]
	if old == new {
		return nil
	}
	for _, e := range []*Exposition{old, new} {
		for i := range e.groupsOrNone() {
			if f := e.groups[i].family; !slices.Contains(sc.families, f) {
				sc.families = append(sc.families, f)
			}
		}
	}
	// Countdowns are written as seconds from the Unix epoch, so they
	// compare by deadline (their segments are made at every scrape anyway).
	epoch := time.Unix(0, 0)
	return slices.DeleteFunc(sc.families, func(f uint16) bool {
		sc.a.Reset()
		sc.b.Reset()
		old.writeFamily(&sc.a, f, epoch)
		new.writeFamily(&sc.b, f, epoch)
		return bytes.Equal(sc.a.Bytes(), sc.b.Bytes())
	})
}

func (e *Exposition) groupsOrNone() []textGroup {
	if e == nil {
		return nil
	}
	return e.groups
}

// writeFamily writes all of e's groups of the family with index f (Join
// can leave several), in their order, as Write does; it reports whether
// they hold countdowns.
func (e *Exposition) writeFamily(buf *bytes.Buffer, f uint16, now time.Time) (countdown bool) {
	for i := range e.groupsOrNone() {
		if e.groups[i].family == f {
			countdown = e.writeTo(buf, &e.groups[i], now) || countdown
		}
	}
	return countdown
}

// Scrape is the expositions a gzip scrape writes, with each one's slot, in
// slot order with -1 (never cached, such as the collector's own metrics,
// rendered at each scrape) last.
type Scrape struct {
	Exps  []*Exposition
	Slots []int32
}

// piece is one segment of a scrape: a block of a catalogued family (or its
// header), or a gathered family.
type piece struct {
	fam    *Family
	header bool // fam's HELP and TYPE lines; for mf, write its own
	mf     *dto.MetricFamily
	lo, hi int // exps[lo:hi], for a block
	cache  int // index in segs, -1 if not cached
	err    error
	seg    segment
	alt    segment // a merged gathered family with its header, for when fam has no samples
}

// span is the expositions of one block of slots.
type span struct {
	lo, hi int
	block  int // -1: not cached
}

// Gzip writes what Write writes, as a gzip member: the expositions load
// returns (called while no Store runs, and quick) and the gathered
// families.
func (c *GzipCache) Gzip(load func() (Scrape, error), gathered []*dto.MetricFamily, now time.Time) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	versions, s, err := c.load(load)
	if err != nil {
		return nil, err
	}
	for _, e := range s.Exps {
		if e.err != nil {
			return nil, e.err
		}
	}
	pieces := c.plan(s, gathered, versions)
	c.made = compressPieces(pieces, s.Exps, now)
	for i := range pieces {
		p := &pieces[i]
		switch {
		case p.err != nil:
			return nil, p.err
		case p.header && p.mf == nil && int(p.fam.index) < len(c.headers):
			c.headers[p.fam.index] = p.seg
		case p.cache >= 0 && !p.seg.countdown:
			p.seg.cached, p.seg.version = true, versions[p.cache]
			c.segs[p.cache] = p.seg
		}
	}
	return join(pieces), nil
}

// load reads the versions and the expositions of one moment; no versions
// when the cache was retired, since stores may then have gone to the next.
func (c *GzipCache) load(load func() (Scrape, error)) ([]uint32, Scrape, error) {
	c.loading.Lock()
	defer c.loading.Unlock()
	versions := make([]uint32, len(c.versions))
	for i := range c.versions {
		versions[i] = c.versions[i].Load()
	}
	s, err := load()
	if c.retired.Load() {
		versions = nil
	}
	return versions, s, err
}

// plan lists the scrape's pieces in the order Write writes them, each
// with its cached segment if that is still good; none with no versions.
func (c *GzipCache) plan(s Scrape, gathered []*dto.MetricFamily, versions []uint32) []piece {
	spans := c.spans(s.Slots, len(s.Exps))
	fams := slices.Clone(all)
	slices.SortFunc(fams, byName)
	mfs := gathered
	var pieces []piece
	blocks := func(f *Family) {
		c.addHeader(&pieces, f)
		for _, sp := range spans {
			p := piece{fam: f, lo: sp.lo, hi: sp.hi, cache: -1}
			if versions != nil && sp.block >= 0 && int(f.index) < c.families {
				p.cache = sp.block*c.families + int(f.index)
				if seg := c.segs[p.cache]; seg.cached && seg.version == versions[p.cache] {
					p.seg = seg
				}
			}
			pieces = append(pieces, p)
		}
	}
	for len(fams) > 0 || len(mfs) > 0 {
		switch {
		case len(mfs) == 0 || (len(fams) > 0 && fams[0].Name < mfs[0].GetName()):
			blocks(fams[0])
			fams = fams[1:]
		case len(fams) > 0 && fams[0].Name == mfs[0].GetName():
			blocks(fams[0])
			pieces = append(pieces, piece{mf: mfs[0], cache: -1})
			fams, mfs = fams[1:], mfs[1:]
		default:
			pieces = append(pieces, piece{mf: mfs[0], header: true, cache: -1})
			mfs = mfs[1:]
		}
	}
	return pieces
}

func (c *GzipCache) addHeader(pieces *[]piece, f *Family) {
	p := piece{fam: f, header: true, cache: -1}
	if int(f.index) < len(c.headers) {
		p.seg = c.headers[f.index]
	}
	*pieces = append(*pieces, p)
}

// spans cuts the expositions into blocks of slots. Expositions out of
// slot order make one span that is never cached.
func (c *GzipCache) spans(slots []int32, n int) []span {
	uncached := []span{{0, n, -1}}
	if len(slots) != n {
		return uncached
	}
	var spans []span
	for i := 0; i < n; {
		block := blockOf(slots[i], c.slots)
		j := i + 1
		for j < n && blockOf(slots[j], c.slots) == block {
			j++
		}
		if k := len(spans); k > 0 && (spans[k-1].block == -1 || block != -1 && block < spans[k-1].block) {
			return uncached
		}
		spans = append(spans, span{i, j, block})
		i = j
	}
	return spans
}

// blockOf is the block of a slot, -1 for slots the cache does not keep.
func blockOf(slot int32, slots int) int {
	if slot < 0 || int(slot) >= slots {
		return -1
	}
	return int(slot) / blockSlots
}

// done reports whether a piece already has its segment.
func (p *piece) done() bool { return p.seg.cached || (p.header && p.mf == nil && p.seg.n > 0) }

// compressPieces makes the segments the pieces lack, on every core, and
// says how many it made.
func compressPieces(pieces []piece, exps []*Exposition, now time.Time) int {
	var todo []*piece
	for i := range pieces {
		if !pieces[i].done() {
			todo = append(todo, &pieces[i])
		}
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(todo)) {
		wg.Go(func() {
			w := compressorPool.Get().(*compressor)
			defer compressorPool.Put(w)
			for i := next.Add(1) - 1; i < int64(len(todo)); i = next.Add(1) - 1 {
				p := todo[i]
				p.seg, p.err = w.segment(p, exps, now)
				if p.mf != nil && !p.header && p.err == nil {
					p.header = true // the same family written alone
					p.alt, p.err = w.segment(p, exps, now)
					p.header = false
				}
			}
		})
	}
	wg.Wait()
	return len(todo)
}

// compressor writes a piece's text and compresses it, its buffers kept
// from scrape to scrape.
type compressor struct {
	text, z bytes.Buffer
	fw      *flate.Writer
}

var compressorPool = sync.Pool{New: func() any {
	// BestSpeed: this text repeats itself so much that it still shrinks
	// over 15 times, for several times less CPU than the default level.
	fw, _ := flate.NewWriter(nil, flate.BestSpeed) // a valid level
	return &compressor{fw: fw}
}}

func (w *compressor) segment(p *piece, exps []*Exposition, now time.Time) (segment, error) {
	w.text.Reset()
	var seg segment
	switch {
	case p.mf != nil:
		// A family the gatherer got wrong fails the scrape, as it does Write.
		if err := writeGathered(&chunker{Buffer: &w.text}, p.mf, p.header); err != nil {
			return seg, err
		}
	case p.header:
		w.text.Write(p.fam.Header())
	default:
		for _, e := range exps[p.lo:p.hi] {
			seg.countdown = e.writeFamily(&w.text, p.fam.index, now) || seg.countdown
		}
	}
	text := w.text.Bytes()
	seg.n, seg.crc, seg.shift = len(text), crc32.ChecksumIEEE(text), crcShift(len(text))
	if len(text) > 0 {
		w.z.Reset()
		w.fw.Reset(&w.z)
		_, _ = w.fw.Write(text) // into memory
		_ = w.fw.Flush()
		seg.z = bytes.Clone(w.z.Bytes())
	}
	return seg, nil
}

// gzipHeader starts a gzip member: deflate, no name or time, unknown OS.
var gzipHeader = []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255}

// finalBlock ends a deflate stream: an empty final block of fixed codes.
var finalBlock = []byte{0x03, 0x00}

// join makes one gzip member of the pieces. A family with no samples has
// no header, and a gathered family of the same name then writes its own.
func join(pieces []piece) []byte {
	size := len(gzipHeader) + len(finalBlock) + 8
	for i := range pieces {
		size += max(len(pieces[i].seg.z), len(pieces[i].alt.z))
	}
	out := make([]byte, 0, size)
	out = append(out, gzipHeader...)
	var crc uint32
	total := 0
	add := func(seg *segment) {
		if seg.n > 0 {
			out = append(out, seg.z...)
			crc = crcCombine(crc, seg.crc, seg.shift)
			total += seg.n
		}
	}
	for i := 0; i < len(pieces); {
		p := &pieces[i]
		if p.mf != nil { // a gathered family of its own
			add(&p.seg)
			i++
			continue
		}
		j, n := i+1, 0
		for ; j < len(pieces) && pieces[j].fam != nil && !pieces[j].header; j++ {
			n += pieces[j].seg.n
		}
		var merged *piece
		if j < len(pieces) && pieces[j].mf != nil && !pieces[j].header {
			merged = &pieces[j]
		}
		if n > 0 {
			for k := i; k < j; k++ {
				add(&pieces[k].seg)
			}
			if merged != nil {
				add(&merged.seg)
			}
		} else if merged != nil {
			add(&merged.alt)
		}
		i = j
		if merged != nil {
			i++
		}
	}
	out = append(out, finalBlock...)
	out = binary.LittleEndian.AppendUint32(out, crc)
	return binary.LittleEndian.AppendUint32(out, uint32(total))
}
