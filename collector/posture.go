package collector

import (
	"context"
	"hash/fnv"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/certfile"
	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/metrics"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

// posture is what the posture jobs share: a key that is their target's job
// id with a posture/ prefix, so that the job and its cached result live
// exactly as long as the target's definition; posture_interval; and how a
// finished run is counted, logged and stored.
type posture[R any] struct {
	id     string
	every  time.Duration
	last   *atomic.Pointer[R]
	self   *selfMetrics
	logger *slog.Logger
}

func (p *posture[R]) key() string             { return p.id }
func (p *posture[R]) interval() time.Duration { return p.every }

// newPosture keeps the result of the job with the same target, if any.
func newPosture[R any](c *Collector, cfg *config.Config, targetID string, prev *posture[R]) posture[R] {
	p := posture[R]{id: "posture/" + targetID, every: cfg.PostureInterval.D(), self: c.self, logger: c.logger, last: new(atomic.Pointer[R])}
	if prev != nil {
		p.last = prev.last
	}
	return p
}

// finish stores a run's result unless the exporter is stopping, when a half
// run is not the target's state.
func (p *posture[R]) finish(ctx context.Context, start time.Time, target string, res *R, unknown []probe.UnknownCheck) {
	if ctx.Err() != nil {
		return
	}
	p.self.observe("posture", start, len(unknown) == 0)
	for _, u := range unknown {
		p.logger.Debug("posture check unknown", "target", target, "check", u.Check, "reason", u.Reason, "detail", u.Detail)
	}
	p.last.Store(res)
}

// postureJob scans one endpoint, sharing the endpoint job's target.
type postureJob struct {
	posture[probe.PostureResult]
	endpoint *endpointJob
	opts     probe.PostureOptions
	delay    time.Duration // of the first scan, set by spreadFirstScans
}

func (j *postureJob) firstDelay() time.Duration { return j.delay }

// firstScanGap is the mean gap between the first scans of endpoints that
// are new together (a start, or a reload adding targets): 20 scans a
// second, about 180 handshakes against Go's defaults, a small part of what
// one core handshakes, where all at once would hold up the first probes.
const firstScanGap = 50 * time.Millisecond

// spreadFirstScans gives each new scan a first delay within
// min(posture_interval, n × firstScanGap), at the point of that window a
// hash of its key names: the same target lands at the same offset every
// time, and the offsets of many targets are spread evenly. A few new
// targets are scanned within a fraction of a second; 10,000 within about 8
// minutes; 72,000 or more at posture_interval 1h over the whole interval,
// the steady rate.
func spreadFirstScans(jobs []*postureJob, every time.Duration) time.Duration {
	window := min(every, time.Duration(len(jobs))*firstScanGap)
	for _, j := range jobs {
		j.delay = offsetIn(j.key(), window)
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

func (j *postureJob) run(ctx context.Context) {
	start := time.Now()
	res := j.endpoint.target.Posture(ctx, j.opts)
	j.finish(ctx, start, j.endpoint.name(), res, res.Unknown)
	j.endpoint.posture.refresh(j.endpoint.renderPosture)
}

// keyJob checks the private keys of a file group against the certificates
// of the group's last read.
type keyJob struct {
	posture[certfile.KeyResult]
	file *fileJob
}

func (j *keyJob) run(ctx context.Context) {
	start := time.Now()
	files := j.file.last.Load()
	if files == nil {
		// Both start at once; do not wait an interval for the group's first read.
		files = certfile.NewFileReader().Read(ctx, j.file.group)
	}
	res := certfile.CheckKeys(ctx, j.file.group, files)
	j.finish(ctx, start, j.file.group.Name, res, res.Unknown)
	j.file.posture.refresh(j.file.renderPosture)
}

// postureSet is the posture jobs of a config, by the id of the endpoint or
// file job they belong to.
type postureSet struct {
	endpoints map[string]*postureJob
	files     map[string]*keyJob
}

// jobs lists them for the scheduler, with room for the probes and reads.
func (s *postureSet) jobs() []job {
	out := make([]job, 0, 2*(len(s.endpoints)+len(s.files)))
	for _, j := range s.endpoints {
		out = append(out, j)
	}
	for _, j := range s.files {
		out = append(out, j)
	}
	return out
}

// postureJobs makes a posture job for each endpoint with posture enabled and
// a key check for each file group.
func (c *Collector) postureJobs(cfg *config.Config, endpoints []*endpointJob, files []*fileJob) *postureSet {
	c.mu.RLock()
	old := c.postures
	c.mu.RUnlock()
	if old == nil {
		old = &postureSet{}
	}
	set := &postureSet{endpoints: make(map[string]*postureJob, len(endpoints)), files: make(map[string]*keyJob, len(files))}
	var fresh []*postureJob
	for _, ej := range endpoints {
		ep := ej.target.Endpoint
		if !ep.PostureEnabled() {
			continue
		}
		var prev *posture[probe.PostureResult]
		if j, ok := old.endpoints[ej.id]; ok {
			prev = &j.posture
		}
		pj := &postureJob{posture: newPosture(c, cfg, ej.id, prev), endpoint: ej,
			opts: probe.PostureOptionsFor(&ep, cfg.Policy)}
		set.endpoints[ej.id], ej.posture.result = pj, pj.last
		if prev == nil {
			fresh = append(fresh, pj)
		}
	}
	spreadFirstScans(fresh, cfg.PostureInterval.D())
	for _, fj := range files {
		var prev *posture[certfile.KeyResult]
		if j, ok := old.files[fj.id]; ok {
			prev = &j.posture
		}
		kj := &keyJob{posture: newPosture(c, cfg, fj.id, prev), file: fj}
		set.files[fj.id], fj.posture.result = kj, kj.last
	}
	return set
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
func changesByName(old map[string]*endpointJob) map[string]*leafChanges {
	m := make(map[string]*leafChanges, len(old))
	for _, j := range old {
		m[j.name()] = j.change
	}
	return m
}

// postureText is a target's posture metrics as text, rendered whenever the
// probe or read, or the posture run, that feeds them stores a result: they
// join both, so neither store alone can render them, and a scrape must not.
type postureText[R any] struct {
	mu     *sync.Mutex // orders renders, so the last stored saw the last results
	text   *atomic.Pointer[metrics.Exposition]
	result *atomic.Pointer[R] // the posture job's; nil when posture is off
	policy config.Policy
}

// newPostureText keeps the slot of the same target's previous job, if any.
func newPostureText[R any](prev *postureText[R], pol config.Policy) postureText[R] {
	if prev != nil {
		return postureText[R]{mu: prev.mu, text: prev.text, policy: pol}
	}
	return postureText[R]{mu: new(sync.Mutex), text: new(atomic.Pointer[metrics.Exposition]), policy: pol}
}

func (p *postureText[R]) refresh(render func(*metrics.Samples)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.text.Store(metrics.Render(render))
}

// last is the posture job's last result, nil before one or without a job.
func (p *postureText[R]) last() *R {
	if p.result == nil {
		return nil
	}
	return p.result.Load()
}

func (j *endpointJob) postureOf(ok bool) *postureText[probe.PostureResult] {
	if !ok {
		return nil
	}
	return &j.posture
}

func (j *fileJob) postureOf(ok bool) *postureText[certfile.KeyResult] {
	if !ok {
		return nil
	}
	return &j.posture
}

// renderPosture renders the endpoint's pins, findings, OCSP, scan and
// policy verdicts from its cached probe and posture results.
func (j *endpointJob) renderPosture(ch *metrics.Samples) {
	ep := j.target.Endpoint
	last := j.last.Load()
	metrics.RenderPins(ch, ep, last)
	if !ep.PostureEnabled() {
		return
	}
	metrics.RenderEndpointPosture(ch, j.posture.policy, ep, last, j.posture.last())
	if at, ok := j.change.last(); ok {
		metrics.RenderLastChange(ch, ep.Name, at)
	}
}

// renderPosture renders the group's findings, policy verdicts and keys.
func (j *fileJob) renderPosture(ch *metrics.Samples) {
	if res := j.last.Load(); res != nil {
		metrics.RenderFilePosture(ch, j.posture.policy, j.group, res)
	}
	if keys := j.posture.last(); keys != nil {
		metrics.RenderKeys(ch, j.group.Name, keys)
	}
}
