package probe

import (
	"context"
	"fmt"
	"net"
	"net/netip"
)

// Resolver looks names up for every dial. It is a variable so that tests can
// count lookups and answer for names of their own; the default is the
// system's resolver.
var Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
} = net.DefaultResolver

// RestrictAddrs makes every dial of the target, the first and any further
// one (MCP over HTTP, posture scans), drop resolved addresses that allow
// refuses. The addresses checked are the addresses dialled, so a DNS answer
// that changes between the check and the dial cannot redirect a connection.
// Call it before the target's first probe.
func (t *Target) RestrictAddrs(allow func(netip.Addr) bool) { t.allowAddr = allow }

// allowed keeps the addresses the target may dial. None left is a DNS
// failure: the name resolves to nothing this target may reach.
func (t *Target) allowed(ips []netip.Addr) ([]netip.Addr, error) {
	if t.allowAddr == nil {
		return ips, nil
	}
	var out []netip.Addr
	for _, ip := range ips {
		if t.allowAddr(ip) {
			out = append(out, ip)
		}
	}
	if len(out) == 0 {
		return nil, &net.DNSError{Err: fmt.Sprintf("resolves only to addresses outside the module's allowed_targets.cidrs %v", ips),
			Name: t.host, IsNotFound: true}
	}
	return out, nil
}
