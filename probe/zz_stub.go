package probe

import (
	"context"

	"github.com/mcpcert/mcp_cert_exporter/config"
)

type Target struct{ Endpoint config.Endpoint }

func NewTarget(ep config.Endpoint) (*Target, error)    { return &Target{Endpoint: ep}, nil }
func (t *Target) Probe(ctx context.Context) *TLSResult { return &TLSResult{} }

type FileReader struct{}

func NewFileReader() *FileReader                                               { return &FileReader{} }
func (r *FileReader) Read(ctx context.Context, g config.FileGroup) *FileResult { return &FileResult{} }
