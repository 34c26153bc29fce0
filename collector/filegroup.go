package collector

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/certfile"
	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/metrics"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

// fileGroup is the kind of target that reads a group of certificate files
// and, on the posture schedule, checks their private keys.
type fileGroup struct {
	group  config.FileGroup
	reader *certfile.FileReader // kept with the results: it caches unchanged files
	res    *fileResults
	files  fileText // what the last refresh rendered, touched only by refresh
}

type fileResults struct {
	last atomic.Pointer[certfile.FileResult]
	keys atomic.Pointer[certfile.KeyResult]
}

func newFileGroup(g config.FileGroup) *fileGroup {
	return &fileGroup{group: g, reader: certfile.NewFileReader(), res: new(fileResults)}
}

func (f *fileGroup) label() string           { return "file" }
func (f *fileGroup) name() string            { return f.group.Name }
func (f *fileGroup) interval() time.Duration { return f.group.Interval.D() }
func (f *fileGroup) scans() bool             { return true }

func (f *fileGroup) carry(prev kind) {
	p := prev.(*fileGroup)
	f.reader, f.res = p.reader, p.res
}

func (f *fileGroup) refresh(ctx context.Context, _ *slog.Logger) (ok, kept bool) {
	res := f.reader.Read(ctx, f.group)
	if ctx.Err() != nil {
		return false, false
	}
	ok = true
	for _, s := range res.Files {
		ok = ok && s.Reason == probe.ReasonNone
	}
	f.res.last.Store(res)
	return ok, true
}

// scan checks the group's private keys against the certificates of its
// last read.
func (f *fileGroup) scan(ctx context.Context) ([]probe.UnknownCheck, bool) {
	files := f.res.last.Load()
	if files == nil {
		// Both start at once; do not wait an interval for the group's first read.
		files = certfile.NewFileReader().Read(ctx, f.group)
	}
	res := certfile.CheckKeys(ctx, f.group, files)
	if ctx.Err() != nil {
		return nil, false
	}
	f.res.keys.Store(res)
	return res.Unknown, true
}

// fileText is a group's file states and their rendered metrics. A rescan
// of files that did not change gets the same states back from the reader,
// so their text is kept rather than rendered again: with 10,000 files,
// rendering cost three times the stat calls.
type fileText struct {
	states []certfile.FileState
	text   *metrics.Exposition
}

// renderResult renders the group's own samples, and its files' unless
// they did not change since the last refresh.
func (f *fileGroup) renderResult(now time.Time) *metrics.Exposition {
	res := f.res.last.Load()
	if res == nil {
		return nil
	}
	if f.files.text == nil || !sameStates(f.files.states, res.Files) {
		f.files = fileText{res.Files, metrics.Render(func(ch *metrics.Samples) {
			metrics.RenderFileStates(ch, f.group, res.Files, now)
		})}
	}
	head := metrics.Render(func(ch *metrics.Samples) { metrics.RenderFileGroup(ch, f.group, res) })
	return metrics.Join(head, f.files.text)
}

// renderPosture renders the group's findings, policy verdicts and keys.
func (f *fileGroup) renderPosture(ch *metrics.Samples, pol config.Policy) {
	if res := f.res.last.Load(); res != nil {
		metrics.RenderFilePosture(ch, pol, f.group, res)
	}
	if keys := f.res.keys.Load(); keys != nil {
		metrics.RenderKeys(ch, f.group.Name, keys)
	}
}

// sameStates reports whether b holds the states of a, certificates by
// identity: the reader hands out a cached state's slice again, and a new
// slice for anything it read.
func sameStates(a, b []certfile.FileState) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := &a[i], &b[i]
		if x.Path != y.Path || x.Reason != y.Reason || x.Detail != y.Detail || !sameCerts(x.Certificates, y.Certificates) {
			return false
		}
	}
	return true
}

func sameCerts(a, b []probe.CertInfo) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}
