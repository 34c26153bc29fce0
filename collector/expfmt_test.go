package collector

import (
	"io"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

func expfmtWrite(w io.Writer, f *dto.MetricFamily) (int, error) {
	return expfmt.MetricFamilyToText(w, f)
}
