package web

import (
	"crypto/tls"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/certfile"
	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

// The per-target view's part of the report model: everything the target's
// report shows beyond its row, built only for that one target so that a
// page of 20,000 rows costs no more than before.

// TLS verdicts of an endpoint's probe, as probe.TLSResult decides them.
const (
	VerdictOK     = "ok"     // handshake completed and the chain, hostname and dates verify
	VerdictFailed = "failed" // the endpoint fails on it
	VerdictWaived = "waived" // a verification failure insecure_skip_verify does not count
)

// TargetDetail is what the per-target view adds to a row: for an endpoint,
// how it was dialled, the probe's timing, the stapled OCSP response and the
// posture scan; for a file group, each file read.
type TargetDetail struct {
	Dial                string         `json:"dial,omitempty"`
	SNI                 string         `json:"sni,omitempty"`
	Timing              *TimingStatus  `json:"timing,omitempty"`
	ClientCertRequested bool           `json:"client_cert_requested,omitempty"`
	OCSP                *OCSPStatus    `json:"ocsp,omitempty"` // nil: no certificate arrived
	Posture             *PostureStatus `json:"posture,omitempty"`
	Files               []FileStatus   `json:"files,omitempty"`
}

// TimingStatus is the time each step of the probe took, to the microsecond.
type TimingStatus struct {
	DNS       string `json:"dns"`
	Connect   string `json:"connect"`
	Handshake string `json:"handshake"`
}

// CertDetail is what the per-target view adds to a certificate.
type CertDetail struct {
	Index              int       `json:"index"` // position in its chain or file
	NotBefore          time.Time `json:"not_before"`
	SANs               []string  `json:"sans,omitempty"`
	KeyType            string    `json:"key_type"`
	KeyBits            int       `json:"key_bits"`
	SignatureAlgorithm string    `json:"signature_algorithm"`
	Serial             string    `json:"serial"`
	SHA256             string    `json:"sha256"`
}

// OCSPStatus is the stapled OCSP response.
type OCSPStatus struct {
	Stapled    bool       `json:"stapled"`
	Status     string     `json:"status,omitempty"`
	ThisUpdate *time.Time `json:"this_update,omitempty"`
	NextUpdate *time.Time `json:"next_update,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	Detail     string     `json:"detail,omitempty"`
}

// PostureStatus is the last posture scan of an endpoint.
type PostureStatus struct {
	Duration           string          `json:"scan_duration"` // to the millisecond
	Versions           []VersionStatus `json:"versions"`      // tested, ascending
	Ciphers            []CipherStatus  `json:"ciphers"`       // accepted, by version ascending
	ClientCertRequired *bool           `json:"client_cert_required,omitempty"`
	HSTS               *HSTSStatus     `json:"hsts,omitempty"`
	Unknown            []UnknownStatus `json:"unknown,omitempty"`
}

// VersionStatus is one protocol version offered alone.
type VersionStatus struct {
	Version  string `json:"version"`
	Accepted bool   `json:"accepted"`
}

// CipherStatus is one cipher suite the server accepted at one version.
type CipherStatus struct {
	Version string `json:"version"`
	Suite   string `json:"suite"`
	Secure  bool   `json:"secure"`
}

// HSTSStatus is the Strict-Transport-Security header of a url endpoint.
type HSTSStatus struct {
	HTTPStatus        int   `json:"http_status"`
	Present           bool  `json:"present"`
	Valid             bool  `json:"valid"`
	MaxAge            int64 `json:"max_age,omitempty"`
	IncludeSubDomains bool  `json:"include_subdomains,omitempty"`
	Preload           bool  `json:"preload,omitempty"`
}

// UnknownStatus is a posture check that could not run.
type UnknownStatus struct {
	Check  string `json:"check"`
	Reason string `json:"reason"`
	Detail string `json:"detail,omitempty"`
	Remedy string `json:"remedy"`
}

// FileStatus is one file a group read, in reading order, with its failure.
type FileStatus struct {
	Path   string `json:"path"`
	Reason string `json:"reason,omitempty"`
	Detail string `json:"detail,omitempty"`
	Remedy string `json:"remedy,omitempty"`
}

// verdictOf is the TLS verdict of a probe.
func verdictOf(r *probe.TLSResult) string {
	switch {
	case r.Reason == probe.ReasonNone:
		return VerdictOK
	case r.Trusted():
		return VerdictWaived
	}
	return VerdictFailed
}

// endpointDetail is the per-target view of an endpoint's probe and, when
// posture is on and a scan ran, its posture scan.
func endpointDetail(ep *config.Endpoint, r *probe.TLSResult, scan *probe.PostureResult) *TargetDetail {
	d := &TargetDetail{
		Dial: ep.HostPort(), SNI: ep.ServerName(), ClientCertRequested: r.ClientCertRequested,
		Timing: &TimingStatus{
			DNS: micro(r.Phases.DNS), Connect: micro(r.Phases.Connect), Handshake: micro(r.Phases.Handshake),
		},
		OCSP: ocspStatus(r.OCSP),
	}
	if scan != nil {
		d.Posture = postureStatus(scan)
	}
	return d
}

func micro(d time.Duration) string { return d.Round(time.Microsecond).String() }

func ocspStatus(o *probe.OCSPInfo) *OCSPStatus {
	if o == nil {
		return nil
	}
	return &OCSPStatus{Stapled: o.Stapled, Status: o.Status, Detail: o.Detail,
		ThisUpdate: timeOrNil(o.ThisUpdate), NextUpdate: timeOrNil(o.NextUpdate), RevokedAt: timeOrNil(o.RevokedAt)}
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func postureStatus(s *probe.PostureResult) *PostureStatus {
	p := &PostureStatus{
		Duration: s.Duration.Round(time.Millisecond).String(), ClientCertRequired: s.ClientCertRequired,
		Versions: make([]VersionStatus, len(s.Versions)), Ciphers: make([]CipherStatus, len(s.Suites)),
	}
	for i, v := range s.Versions {
		p.Versions[i] = VersionStatus{Version: tls.VersionName(v.Version), Accepted: v.Accepted}
	}
	for i, c := range s.Suites {
		p.Ciphers[i] = CipherStatus{Version: tls.VersionName(c.Version), Suite: tls.CipherSuiteName(c.Suite), Secure: c.Secure}
	}
	if h := s.HSTS; h != nil {
		p.HSTS = &HSTSStatus{HTTPStatus: h.Status, Present: h.Present, Valid: h.Valid, MaxAge: h.MaxAge,
			IncludeSubDomains: h.IncludeSubDomains, Preload: h.Preload}
	}
	for _, u := range s.Unknown {
		p.Unknown = append(p.Unknown, UnknownStatus{Check: u.Check, Reason: string(u.Reason), Detail: u.Detail, Remedy: u.Reason.Remedy()})
	}
	return p
}

// fileDetail is the per-target view of a file group: each file read.
func fileDetail(r *certfile.FileResult) *TargetDetail {
	d := &TargetDetail{Files: make([]FileStatus, len(r.Files))}
	for i, f := range r.Files {
		d.Files[i] = FileStatus{Path: f.Path}
		if f.Reason != probe.ReasonNone {
			d.Files[i].Reason, d.Files[i].Detail, d.Files[i].Remedy = string(f.Reason), f.Detail, f.Reason.Remedy()
		}
	}
	return d
}

func certDetail(i int, c *probe.CertInfo) *CertDetail {
	return &CertDetail{Index: i, NotBefore: c.NotBefore, SANs: c.SANs, KeyType: c.KeyType, KeyBits: c.KeyBits,
		SignatureAlgorithm: c.SignatureAlgorithm, Serial: c.Serial, SHA256: c.FingerprintSHA256}
}
