# cloudflare/pint settings for `pint lint alerts/` (go test ./alerts runs it).
# Only the rendered rules are Prometheus rules: the template, thresholds.yml
# and the promtool tests in alerts/ are not, so pint reads just the one file.
parser {
  include = ["alerts/mcp_cert_exporter[.]rules[.]yml"]
}
