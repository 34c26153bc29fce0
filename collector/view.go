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
	endpoints, files := c.endpoints, c.files
	c.mu.RUnlock()
	ev := make([]EndpointView, len(endpoints))
	for i, j := range endpoints {
		ev[i] = EndpointView{Endpoint: j.target.Endpoint, Policy: j.posture.policy, Last: j.last.Load(), Posture: j.posture.last()}
	}
	fv := make([]FileView, len(files))
	for i, j := range files {
		fv[i] = FileView{Group: j.group, Policy: j.posture.policy, Last: j.last.Load(), Keys: j.posture.last()}
	}
	return ev, fv
}
