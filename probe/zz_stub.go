package probe

import (
	"context"

	"github.com/mcpcert/mcp_cert_exporter/config"
)

type FileReader struct{}

func NewFileReader() *FileReader                                               { return &FileReader{} }
func (r *FileReader) Read(ctx context.Context, g config.FileGroup) *FileResult { return &FileResult{} }
