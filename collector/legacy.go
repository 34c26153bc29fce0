package collector

import (
	"sync/atomic"

	"github.com/mcpcert/mcp_cert_exporter/certfile"
	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

// legacy is how status*.go reads the targets until /status moves to web/
// and reads Views() instead; this file goes then.
type legacy struct {
	endpoints []*endpointJob
	files     []*fileJob
}

type endpointJob struct {
	t       *target
	target  *probe.Target
	last    *atomic.Pointer[probe.TLSResult]
	posture legacyPosture[probe.PostureResult]
}

type fileJob struct {
	t       *target
	group   config.FileGroup
	last    *atomic.Pointer[certfile.FileResult]
	posture legacyPosture[certfile.KeyResult]
}

type legacyPosture[R any] struct {
	policy config.Policy
	result *atomic.Pointer[R]
}

func (p legacyPosture[R]) last() *R { return p.result.Load() }

func legacyOf(targets []*target) legacy {
	var l legacy
	for _, t := range targets {
		switch k := t.kind.(type) {
		case *endpoint:
			l.endpoints = append(l.endpoints, &endpointJob{t, k.probe, &k.res.last, legacyPosture[probe.PostureResult]{t.policy, &k.res.scan}})
		case *fileGroup:
			l.files = append(l.files, &fileJob{t, k.group, &k.res.last, legacyPosture[certfile.KeyResult]{t.policy, &k.res.keys}})
		}
	}
	return l
}

// store keeps a result as a refresh would (tests).
func (j *endpointJob) store(r *probe.TLSResult) { j.last.Store(r); j.t.render(true) }
func (j *fileJob) store(r *certfile.FileResult) { j.last.Store(r); j.t.render(true) }

func (j *endpointJob) name() string { return j.target.Endpoint.Name }
