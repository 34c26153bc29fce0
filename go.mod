module github.com/mcpcert/mcp_cert_exporter

go 1.26.8

require (
	github.com/bmatcuk/doublestar/v4 v4.10.4
	github.com/prometheus/common v0.73.1
	gopkg.in/yaml.v3 v3.0.1
)

require (
	github.com/prometheus/client_model v0.6.3 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)
