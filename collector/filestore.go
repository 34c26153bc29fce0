package collector

import (
	"time"

	"github.com/mcpcert/mcp_cert_exporter/certfile"
	"github.com/mcpcert/mcp_cert_exporter/metrics"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

// fileText is a group's file states and their rendered metrics. A rescan
// of files that did not change gets the same states back from the reader,
// so their text is kept rather than rendered again: with 10,000 files,
// rendering cost three times the stat calls.
type fileText struct {
	states []certfile.FileState
	text   *metrics.Exposition
}

// store caches res and its metrics as text: the group's own samples
// rendered now, its files' from the last store when they did not change.
func (j *fileJob) store(res *certfile.FileResult) {
	now := time.Now()
	if j.files.text == nil || !sameStates(j.files.states, res.Files) {
		j.files = fileText{res.Files, metrics.Render(func(ch *metrics.Samples) {
			metrics.RenderFileStates(ch, j.group, res.Files, now)
		})}
	}
	head := metrics.Render(func(ch *metrics.Samples) { metrics.RenderFileGroup(ch, j.group, res) })
	j.text.Store(metrics.Join(head, j.files.text))
	j.last.Store(res)
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
