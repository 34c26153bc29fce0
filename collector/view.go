package collector

import (
	"github.com/mcpcert/mcp_cert_exporter/certfile"
	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

// EndpointView is an endpoint's definition and its last results, read at
// one moment; nil results mean none yet (or posture off). Readers must not
// modify the results: the collector shares them with every reader.
type EndpointView struct {
	Endpoint config.Endpoint
	Policy   config.Policy
	Last     *probe.TLSResult
	Posture  *probe.PostureResult
}

// FileView is a file group's definition and its last results, read at one
// moment, shared as EndpointView's are.
type FileView struct {
	Group  config.FileGroup
	Policy config.Policy
	Last   *certfile.FileResult
	Keys   *certfile.KeyResult
}

// Views snapshots every target in config order: what the status page and
// other readers of results need, and nothing of the collector's workings.
// It costs two slices; nothing is copied but the definitions.
func (c *Collector) Views() ([]EndpointView, []FileView) {
	c.mu.RLock()
	targets, endpoints := c.targets, c.endpointCount
	c.mu.RUnlock()
	ev, fv := make([]EndpointView, 0, endpoints), make([]FileView, 0, len(targets)-endpoints)
	for _, t := range targets {
		switch k := t.kind.(type) {
		case *endpoint:
			ev = append(ev, EndpointView{Endpoint: *k.probe.Endpoint, Policy: t.policy, Last: k.res.last.Load(), Posture: k.res.scan.Load()})
		case *fileGroup:
			fv = append(fv, FileView{Group: k.group, Policy: t.policy, Last: k.res.last.Load(), Keys: k.res.keys.Load()})
		}
	}
	return ev, fv
}
