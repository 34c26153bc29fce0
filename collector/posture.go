package collector

import (
	"hash/fnv"
	"sync"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/probe"
)

// The posture schedule of each target is its scanJob (target.go); this
// file spreads the first scans and keeps the leaf-change history that
// posture metrics report.

// firstScanGap is the mean gap between the first scans of endpoints that
// are new together (a start, or a reload adding targets): 20 scans a
// second (those of one start tick together, scheduler.go), about 180
// handshakes against Go's defaults, a small part of what
// one core handshakes, where all at once would hold up the first probes.
const firstScanGap = 50 * time.Millisecond

// spreadFirstScans gives each new scan a first delay within
// min(posture_interval, n × firstScanGap), at the point of that window a
// hash of its key names: the same target lands at the same offset every
// time, and the offsets of many targets are spread evenly. A few new
// targets are scanned within a fraction of a second; 10,000 within about 8
// minutes; 72,000 or more at posture_interval 1h over the whole interval,
// the steady rate.
func spreadFirstScans(ts []*target, every time.Duration) time.Duration {
	window := min(every, time.Duration(len(ts))*firstScanGap)
	for _, t := range ts {
		t.firstScan = offsetIn(scanJob{t}.key(), window)
	}
	return window
}

// offsetIn is a fixed point of window for key: FNV-1a of the key, its bits
// mixed (splitmix64's finaliser) so that keys differing in one character
// land far apart.
func offsetIn(key string, window time.Duration) time.Duration {
	h := fnv.New64a()
	h.Write([]byte(key))
	x := h.Sum64()
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	x ^= x >> 31
	return time.Duration(float64(window) * (float64(x>>11) / (1 << 53)))
}

// leafChanges remembers an endpoint's leaf fingerprint and when it last
// changed. Before any change is seen, the change time is the leaf's
// NotBefore: it cannot have been deployed earlier, and an exporter restart
// is not a change.
type leafChanges struct {
	mu          sync.Mutex
	fingerprint string
	changed     time.Time
}

// observe notes the leaf of a probe; a probe that saw no certificate says
// nothing about it.
func (l *leafChanges) observe(r *probe.TLSResult) {
	if len(r.Certificates) == 0 || r.Certificates[0].Role != probe.RoleLeaf {
		return
	}
	leaf := &r.Certificates[0]
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.fingerprint == "":
		l.fingerprint, l.changed = leaf.FingerprintSHA256, leaf.NotBefore
	case l.fingerprint != leaf.FingerprintSHA256:
		l.fingerprint, l.changed = leaf.FingerprintSHA256, r.Time
	}
}

// last is the time of the last change, false before any leaf was seen.
func (l *leafChanges) last() (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed, l.fingerprint != ""
}

// changesFor carries an endpoint's change history over a reload by name, the
// target label: a changed address or setting is still the same target.
func changesFor(byName map[string]*leafChanges, name string) *leafChanges {
	if ch := byName[name]; ch != nil {
		return ch
	}
	return new(leafChanges)
}

// changesByName indexes the leaf histories by endpoint name, which outlives
// a change of the endpoint's definition: one map, not a scan per endpoint.
func changesByName(old []*target) map[string]*leafChanges {
	m := make(map[string]*leafChanges, len(old))
	for _, t := range old {
		if e, ok := t.kind.(*endpoint); ok {
			m[e.name()] = e.change
		}
	}
	return m
}
