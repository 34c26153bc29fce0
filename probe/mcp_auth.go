package probe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

const wellKnownResource = "/.well-known/oauth-protected-resource"

// checkAuthMetadata checks the OAuth discovery of a server that answered
// 401, as an MCP client follows it: the resource_metadata URL of the Bearer
// challenge, else the well-known URLs on the endpoint's host. Only the
// endpoint's host is contacted: a resource_metadata URL elsewhere is not
// fetched, and the well-known URLs on the endpoint's host are tried instead.
func checkAuthMetadata(ctx context.Context, h *mcpHTTP, r *MCPResult) {
	wwwAuth := challenge401(h)
	valid, detail := authMetadata(ctx, h, wwwAuth)
	// A server that names its resource_metadata speaks 2025-06-18 or later,
	// and its discovery is broken; one that names none may be older.
	if !valid && h.verified && !advertisesMetadata(wwwAuth) {
		if err := fetchAuthServerMeta(ctx, h); err == nil {
			valid, r.AuthLegacy = true, true
			detail = "working but pre-2025-06-18: no RFC 9728 protected-resource metadata (" + detail + "), but RFC 8414 " +
				"authorization-server metadata at " + rootAuthServerURL(h.origin) + ", as MCP 2025-03-26 clients look for it; " +
				"clients of 2025-06-18 and later need the protected-resource metadata"
		} else {
			detail += "; no 2025-03-26 fallback either: " + rootAuthServerURL(h.origin) + ": " + err.Error()
		}
	}
	r.AuthMetadataValid, r.AuthDetail = &valid, detail
}

func advertisesMetadata(wwwAuth []string) bool {
	challenges, _ := oauthex.ParseWWWAuthenticate(wwwAuth) // malformed ones were reported by authMetadata
	for _, c := range challenges {
		if c.Scheme == "bearer" && c.Params["resource_metadata"] != "" {
			return true
		}
	}
	return false
}

const wellKnownAuthServer = "/.well-known/oauth-authorization-server"

// rootAuthServerURL is where MCP 2025-03-26 clients find the authorization
// server: the endpoint's URL with its path discarded, plus RFC 8414's
// well-known path.
func rootAuthServerURL(origin *url.URL) string {
	return origin.Scheme + "://" + origin.Host + wellKnownAuthServer
}

// fetchAuthServerMeta GETs RFC 8414 metadata at the root of the endpoint's
// host and checks what a client needs of it: an https issuer and the
// authorization and token endpoints.
func fetchAuthServerMeta(ctx context.Context, h *mcpHTTP) error {
	var meta oauthex.AuthServerMeta
	if err := getJSON(ctx, h, rootAuthServerURL(h.origin), &meta); err != nil {
		return err
	}
	for _, f := range []struct{ name, v string }{{"issuer", meta.Issuer},
		{"authorization_endpoint", meta.AuthorizationEndpoint}, {"token_endpoint", meta.TokenEndpoint}} {
		if u, err := url.Parse(f.v); err != nil || u.Scheme != "https" || u.Host == "" {
			return fmt.Errorf("%s %q is not an https URL", f.name, f.v)
		}
	}
	return nil
}

// challenge401 is the WWW-Authenticate of the first 401 answer.
func challenge401(h *mcpHTTP) []string {
	for _, e := range h.since(0) {
		if e.status == http.StatusUnauthorized {
			return e.wwwAuth
		}
	}
	return nil
}

func authMetadata(ctx context.Context, h *mcpHTTP, wwwAuth []string) (bool, string) {
	if !h.verified {
		return false, "not checked: discovery must be fetched over verified TLS, and this endpoint's certificate does not verify"
	}
	challenges, err := oauthex.ParseWWWAuthenticate(wwwAuth)
	if err != nil {
		return false, fmt.Sprintf("malformed WWW-Authenticate: %v", err)
	}
	var bearer *oauthex.Challenge
	for i := range challenges {
		if challenges[i].Scheme == "bearer" {
			bearer = &challenges[i]
		}
	}
	if bearer == nil {
		return false, "the 401 answer has no WWW-Authenticate: Bearer challenge"
	}
	urls, note, err := metadataURLs(h.origin, bearer.Params["resource_metadata"])
	if err != nil {
		return false, err.Error()
	}
	var fails []string
	for _, u := range urls {
		err := fetchMetadata(ctx, h, u)
		if err == nil {
			return true, note + "protected-resource metadata at " + u + " is well-formed"
		}
		fails = append(fails, fmt.Sprintf("%s: %v", u, err))
	}
	return false, note + strings.Join(fails, "; ")
}

// metadataURLs lists where to look for the metadata, in the order MCP
// clients do, with a note on anything unusual.
func metadataURLs(origin *url.URL, advertised string) (urls []string, note string, err error) {
	if advertised == "" {
		note = "the Bearer challenge has no resource_metadata (MCP 2025-06-18 clients need it; newer ones try the well-known URLs); "
		return wellKnownURLs(origin), note, nil
	}
	u, err := url.Parse(advertised)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, "", fmt.Errorf("resource_metadata %q is not an absolute https URL", advertised)
	}
	if !sameHost(u, origin) {
		note = fmt.Sprintf("resource_metadata %s is on another host and was not fetched (the exporter only connects to the "+
			"configured target); tried the endpoint's host instead: ", advertised)
		return wellKnownURLs(origin), note, nil
	}
	return []string{advertised}, "", nil
}

// wellKnownURLs are RFC 9728's URLs for the endpoint: with its path
// inserted, then at the root.
func wellKnownURLs(origin *url.URL) []string {
	root := origin.Scheme + "://" + origin.Host
	urls := []string{}
	if p := strings.TrimSuffix(origin.EscapedPath(), "/"); p != "" {
		urls = append(urls, root+wellKnownResource+p)
	}
	return append(urls, root+wellKnownResource)
}

func sameHost(u, origin *url.URL) bool {
	return strings.EqualFold(u.Scheme, origin.Scheme) && strings.EqualFold(u.Hostname(), origin.Hostname()) && portOf(u) == portOf(origin)
}

// fetchMetadata GETs the document without the bearer token (discovery is
// public) and checks it.
func fetchMetadata(ctx context.Context, h *mcpHTTP, u string) error {
	var prm oauthex.ProtectedResourceMetadata
	if err := getJSON(ctx, h, u, &prm); err != nil {
		return err
	}
	return checkMetadata(&prm, h.origin)
}

// getJSON GETs a metadata document into v, without the bearer token.
func getJSON(ctx context.Context, h *mcpHTTP, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := h.anon.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("not a JSON metadata document: %w", err)
	}
	return nil
}

// checkMetadata holds the document to what a client needs: the resource it
// names covers the endpoint, and at least one https authorization server.
func checkMetadata(prm *oauthex.ProtectedResourceMetadata, origin *url.URL) error {
	if prm.Resource == "" {
		return errors.New("no resource")
	}
	if !covers(prm.Resource, origin) {
		return fmt.Errorf("resource %q does not match the endpoint %s", prm.Resource, origin)
	}
	if len(prm.AuthorizationServers) == 0 {
		return errors.New("no authorization_servers")
	}
	for i, as := range prm.AuthorizationServers {
		u, err := url.Parse(as)
		if err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("authorization_servers[%d] %q is not an https issuer URL", i, as)
		}
	}
	return nil
}

// covers is true when the resource is the endpoint's URL or a parent of it
// on the same origin, as MCP clients accept (https://host/ covers
// https://host/mcp).
func covers(resource string, origin *url.URL) bool {
	u, err := url.Parse(resource)
	if err != nil || !sameHost(u, origin) || u.RawQuery != "" || u.Fragment != "" {
		return false
	}
	rp, op := strings.TrimSuffix(u.EscapedPath(), "/"), strings.TrimSuffix(origin.EscapedPath(), "/")
	return rp == op || strings.HasPrefix(op, rp+"/")
}
