package config

import (
	"crypto/tls"
	"errors"
	"io/fs"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

const day = 24 * time.Hour

func TestLoadFileGood(t *testing.T) {
	cfg, err := LoadFile("testdata/good.yml")
	if err != nil {
		t.Fatal(err)
	}
	noPosture := false
	want := &Config{
		Interval:        Duration(2 * time.Minute),
		Timeout:         Duration(15 * time.Second),
		Concurrency:     8,
		PostureInterval: Duration(6 * time.Hour),
		Policy: Policy{
			MinVersion:            TLSVersion(tls.VersionTLS13),
			AllowInsecureCiphers:  true,
			RequireClientCert:     true,
			MaxValidity:           Duration(398 * day),
			MinHSTSMaxAge:         Duration(180 * day),
			AllowSelfSignedLeaves: true,
		},
		Endpoints: []Endpoint{
			{
				Name:     "internal-mcp",
				URL:      "https://mcp-server.internal:8443/mcp",
				Interval: Duration(30 * time.Second),
				Timeout:  Duration(5 * time.Second),
				TLSConfig: TLSConfig{
					CAFile:             "testdata/ca.pem",
					CertFile:           "testdata/client.pem",
					KeyFile:            "testdata/client.key",
					ServerName:         "mcp.internal.example",
					InsecureSkipVerify: true,
					MinVersion:         TLSVersion(tls.VersionTLS12),
					MaxVersion:         TLSVersion(tls.VersionTLS13),
				},
				MCP:     MCPConfig{Transport: TransportStreamable, BearerTokenFile: "testdata/token"},
				Posture: &noPosture,
				PinSHA256: []string{
					"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
					"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
				},
				Limits: DefaultLimits,
			},
			// Interval and timeout inherit the global ones.
			{Name: "partner-tls", Address: "partner.example.com:443", Interval: Duration(2 * time.Minute), Timeout: Duration(15 * time.Second), Limits: DefaultLimits},
		},
		Files: []FileGroup{
			{
				Name:     "mcp-server-tls",
				Paths:    []string{"/etc/mcp/tls/*.crt", "/etc/letsencrypt/live/**/fullchain.pem"},
				KeyPaths: []string{"/etc/mcp/tls/*.key"},
				KeyPairs: []KeyPair{{Cert: "/etc/nginx/ssl/api.crt", Key: "testdata/api-private.pem"}},
				Interval: Duration(10 * time.Minute),
				Limits:   DefaultLimits,
			},
			{Name: "fixtures", Paths: []string{"testdata/*.pem"}, Interval: Duration(2 * time.Minute), Limits: DefaultLimits},
			{Name: "system-roots", Paths: []string{"/etc/ssl/certs/ca-certificates.crt"}, Interval: Duration(2 * time.Minute), TrustStore: true, Limits: DefaultLimits},
		},
		Limits:           DefaultLimits,
		File:             "testdata/good.yml",
		ProbeConcurrency: DefaultProbeConcurrency,
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("parsed\n%#v\nwant\n%#v", cfg, want)
	}
}

func TestDefaultsApplyToAbsentKeys(t *testing.T) {
	defaultEndpoint := Endpoint{Name: "api", URL: "https://mcp.example.com/mcp", Interval: Duration(DefaultInterval), Timeout: Duration(DefaultTimeout), Limits: DefaultLimits}
	tests := []struct {
		name      string
		yaml      string
		endpoints []Endpoint
	}{
		{name: "empty file", yaml: ""},
		{name: "comments only", yaml: "# nothing to watch yet\n"},
		{name: "required keys only", yaml: "endpoints:\n  - name: api\n    url: https://mcp.example.com/mcp\n", endpoints: []Endpoint{defaultEndpoint}},
		{
			name:      "keys left empty",
			yaml:      "interval:\ntimeout: ~\nconcurrency:\nposture_interval: null\nendpoints:\n  - name: api\n    url: https://mcp.example.com/mcp\n    interval:\n    timeout: ~\n",
			endpoints: []Endpoint{defaultEndpoint},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tt.yaml), "mcp.yml")
			if err != nil {
				t.Fatal(err)
			}
			want := &Config{
				Interval:        Duration(60 * time.Second),
				Timeout:         Duration(10 * time.Second),
				Concurrency:     32,
				PostureInterval: Duration(time.Hour),
				Policy:          Policy{MinVersion: TLSVersion(tls.VersionTLS12)},
				Endpoints:       tt.endpoints,
				Limits:          DefaultLimits,
				File:            "mcp.yml",

				ProbeConcurrency: DefaultProbeConcurrency,
			}
			if !reflect.DeepEqual(cfg, want) {
				t.Errorf("parsed\n%#v\nwant\n%#v", cfg, want)
			}
		})
	}
}

func TestLoadFileEmptyHasNoTargets(t *testing.T) {
	cfg, err := LoadFile("testdata/empty.yml")
	if err != nil {
		t.Fatalf("an empty config must be valid: %v", err)
	}
	if len(cfg.Endpoints)+len(cfg.Files) != 0 {
		t.Errorf("targets = %v %v, want none", cfg.Endpoints, cfg.Files)
	}
}

func TestFileGroupIntervalInherits(t *testing.T) {
	cfg, err := LoadFile("testdata/defaults.yml")
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Files[0].Interval; got != Duration(DefaultInterval) {
		t.Errorf("files[0].interval = %v, want %v", got.D(), DefaultInterval)
	}
}

// Relative paths follow the config file, not the working directory.
func TestRelativePathsFollowConfigFile(t *testing.T) {
	data := []byte("endpoints:\n  - name: api\n    url: https://mcp.example.com/mcp\n    tls_config:\n      ca_file: ../ca.pem\n" +
		"files:\n  - name: certs\n    paths: [\"../*.pem\", \"/abs/*.pem\"]\n")
	cfg, err := Parse(data, "testdata/bad/mcp.yml")
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Endpoints[0].TLSConfig.CAFile; got != "testdata/ca.pem" {
		t.Errorf("ca_file = %q, want testdata/ca.pem", got)
	}
	if got := cfg.Files[0].Paths; !reflect.DeepEqual(got, []string{"testdata/*.pem", "/abs/*.pem"}) {
		t.Errorf("paths = %q", got)
	}
}

func TestLoadFileMissing(t *testing.T) {
	_, err := LoadFile("testdata/missing.yml")
	if want := "testdata/missing.yml: cannot read: no such file or directory"; err == nil || err.Error() != want {
		t.Fatalf("error = %v, want %s", err, want)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("errors.Is(%v, fs.ErrNotExist) = false", err)
	}
}

// Each file under testdata/bad holds one problem; its message is exact, with
// the file, the line of the offending key (or of the block that lacks one)
// and the field.
var badConfigs = map[string]string{
	"unknown_top.yml":                  "2: intervall: unknown field; check its spelling and indentation",
	"unknown_endpoint.yml":             "4: endpoints[0].insecure_skip_verify: unknown field; check its spelling and indentation",
	"unknown_tls_config.yml":           "4: endpoints[0].tls_config.bogus: unknown field; check its spelling and indentation",
	"unknown_mcp.yml":                  "6: endpoints[0].mcp.token_file: unknown field; check its spelling and indentation",
	"unknown_files.yml":                "4: files[0].glob: unknown field; check its spelling and indentation",
	"unknown_policy.yml":               "3: policy.max_age: unknown field; check its spelling and indentation",
	"duplicate_name.yml":               `4: endpoints[1].name: duplicate name "api", already used by endpoints[0]`,
	"duplicate_name_endpoint_file.yml": `5: files[0].name: duplicate name "api", already used by endpoints[0]`,
	"missing_name_endpoint.yml":        "4: endpoints[1].name: is required",
	"missing_name_file.yml":            "2: files[0].name: is required",
	"url_and_address.yml":              "4: endpoints[0].address: set url or address, not both",
	"no_url_or_address.yml":            "2: endpoints[0]: needs a url or an address",
	"http_url.yml":                     `3: endpoints[0].url: must be an https:// URL, got scheme "http"`,
	"url_no_host.yml":                  "3: endpoints[0].url: has no host",
	"url_bad_host.yml":                 `3: endpoints[0].url: host "]" is not a DNS name or an IP address`,
	"address_bad_host.yml":             `3: endpoints[0].address: host "mcp example.com" is not a DNS name or an IP address`,
	"url_no_scheme.yml":                "3: endpoints[0].url: must be an https:// URL such as https://mcp.example.com/mcp",
	"url_credentials.yml":              "3: endpoints[0].url: must not carry credentials; use mcp.bearer_token_file",
	"url_credentials_bad_escape.yml":   "3: endpoints[0].url: is not a valid URL: check its user info, host and port",
	"url_bad_port.yml":                 `3: endpoints[0].url: port "99999" is not a number from 1 to 65535`,
	"address_no_port.yml":              "3: endpoints[0].address: must be host:port: missing port in address",
	"address_with_scheme.yml":          "3: endpoints[0].address: must be host:port without a scheme; use url for an https:// URL",
	"bad_duration.yml":                 `1: interval: cannot parse "5 minutes" as a duration (write it like 30s, 5m, 1h or 90d)`,
	"bad_duration_endpoint.yml":        `4: endpoints[0].timeout: cannot parse "10" as a duration (write it like 30s, 5m, 1h or 90d)`,
	"interval_map.yml":                 "1: interval: must be a duration like 30s, 5m, 1h or 90d, not a mapping",
	"negative_interval.yml":            `1: interval: cannot be negative (got "-30s")`,
	"zero_interval.yml":                "1: interval: must be greater than zero",
	// Blamed on the key that is wrong, not on the targets that inherit it.
	"zero_interval_inherited.yml": "1: interval: must be greater than zero",
	"concurrency_huge.yml":        "1: concurrency: must be at most 10000, got 9223372036854775807",
	"interval_huge.yml":           "1: interval: must be at most 1y, got 400d",
	"timeout_huge.yml":            "1: timeout: must be at most 1h, got 2h",
	"policy_huge.yml":             "2: policy.max_validity: must be at most 100y, got 200y",
	"limits_zero.yml":             "2: limits.certificates_per_file: must be from 1 to 100000 (default 250), got 0",
	"limits_huge.yml":             "2: limits.glob_entries: must be from 1 to 10000000 (default 100000), got 9223372036854775807",
	"url_token_query.yml": `3: endpoints[0].url: query parameter "access_token" looks like a credential, which /status and ` +
		"logs would show; use mcp.bearer_token_file",
	"url_api_key_query.yml": `3: endpoints[0].url: query parameter "X-Api-Key" looks like a credential, which /status and ` +
		"logs would show; use mcp.bearer_token_file",
	"zero_timeout_endpoint.yml":    "4: endpoints[0].timeout: must be greater than zero",
	"concurrency_zero.yml":         "1: concurrency: must be at least 1",
	"concurrency_abc.yml":          `1: concurrency: must be a whole number, not "abc"`,
	"ca_file_missing.yml":          "5: endpoints[0].tls_config.ca_file: cannot read \"testdata/bad/missing-ca.pem\": no such file or directory",
	"ca_file_directory.yml":        "5: endpoints[0].tls_config.ca_file: cannot read \"testdata\": is a directory",
	"ca_file_no_pem.yml":           "5: endpoints[0].tls_config.ca_file: \"testdata/notpem.txt\" holds no PEM certificate",
	"key_exchange_unknown.yml":     `5: endpoints[0].tls_config.key_exchange: unknown key exchange "hybrid" (use classical or default)`,
	"cert_without_key.yml":         "4: endpoints[0].tls_config.key_file: is required when cert_file is set",
	"key_without_cert.yml":         "4: endpoints[0].tls_config.cert_file: is required when key_file is set",
	"key_mismatch.yml":             "5: endpoints[0].tls_config.cert_file: cannot be used with key_file: private key does not match public key",
	"key_file_missing.yml":         "6: endpoints[0].tls_config.key_file: cannot read \"testdata/bad/missing.key\": no such file or directory",
	"min_version_unknown.yml":      `5: endpoints[0].tls_config.min_version: must be TLS10, TLS11, TLS12 or TLS13, not "TLS1.2"`,
	"min_above_max.yml":            "5: endpoints[0].tls_config.min_version: is above max_version",
	"mcp_transport_unknown.yml":    `5: endpoints[0].mcp.transport: unknown transport "websocket" (use auto, streamable, sse or none)`,
	"mcp_transport_on_address.yml": "5: endpoints[0].mcp.transport: MCP needs a url endpoint; address endpoints only do TLS",
	"bearer_token_missing.yml":     "5: endpoints[0].mcp.bearer_token_file: cannot read \"testdata/bad/missing-token\": no such file or directory",
	"bearer_token_empty.yml":       "5: endpoints[0].mcp.bearer_token_file: \"testdata/empty_token\" is empty",
	"bad_pin.yml":                  `6: endpoints[0].pin_sha256[1]: "not-a-pin" is not a base64 or hex SHA-256 digest`,
	"bad_glob.yml":                 `4: files[0].paths[0]: "/etc/mcp/tls/[abc.crt" is not a valid glob`,
	"empty_paths.yml":              "3: files[0].paths: needs at least one path or glob",
	"empty_glob.yml":               "3: files[0].paths[1]: is empty",
	"paths_string.yml":             `3: files[0].paths: must be a list of strings, not "/etc/mcp/tls/*.crt"`,
	"tab_indent.yml":               "3: invalid YAML: a tab indents this line; YAML allows only spaces for indentation",
	"bad_indent.yml":               "4: invalid YAML: did not find expected '-' indicator; check the indentation",
	"unclosed_quote.yml":           "2: invalid YAML: a quoted string is not closed",
	"unclosed_bracket.yml":         "4: invalid YAML: did not find expected ',' or ']'",
	"duplicate_key.yml":            "3: interval: duplicate key; it is already set at line 1",
	"second_document.yml":          "2: found a second YAML document; the config must be a single document",
	"endpoints_map.yml":            "2: endpoints: must be a list of endpoints, not a mapping",
	"endpoint_string.yml":          `2: endpoints[0]: must be a mapping with a name and a url or an address, not "https://mcp.example.com/mcp"`,
	"top_level_list.yml":           "1: the config must be a mapping of keys such as interval and endpoints, not a list",
	"tls_config_string.yml":        `4: endpoints[0].tls_config: must be a mapping, not "insecure"`,
	"posture_not_bool.yml":         `4: endpoints[0].posture: must be true or false, not "sometimes"`,
	"name_list.yml":                "2: endpoints[0].name: must be a string, not a list",
	"trust_store_not_bool.yml":     `4: files[0].trust_store: must be true or false, not "yes please"`,
	"trust_store_with_keys.yml":    "5: files[0].trust_store: cannot be used with key_paths or key_pairs: a trust store holds CA roots, not their keys",
	"key_pair_no_key.yml":          "5: files[0].key_pairs[0].key: is required: a key pair names a certificate file and its key file",
	"key_pair_unknown.yml":         "7: files[0].key_pairs[0].passphrase: unknown field; check its spelling and indentation",
}

func TestLoadFileBad(t *testing.T) {
	files, err := os.ReadDir("testdata/bad")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(badConfigs) {
		t.Errorf("testdata/bad holds %d files, the table %d: every file needs its case", len(files), len(badConfigs))
	}
	for name, want := range badConfigs {
		t.Run(name, func(t *testing.T) {
			file := "testdata/bad/" + name
			_, err := LoadFile(file)
			if err == nil {
				t.Fatal("no error")
			}
			if want := file + ":" + want; err.Error() != want {
				t.Errorf("error\n got %s\nwant %s", err, want)
			}
			var errs Errors
			if !errors.As(err, &errs) || len(errs) != 1 {
				t.Errorf("error is %T with %d entries, want Errors with one", err, len(errs))
			}
			checkReadable(t, errs)
		})
	}
}

// goNames are traces of Go and of yaml.v3's internals a user must not see.
var goNames = regexp.MustCompile(`config\.[A-Z]|\[\]|!!|map\[|\b(u?int\d*|float\d+)\b|yaml: |net/url|\btls: `)

// quoted matches what a message quotes from the file: the user's words.
var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'[^']*'`)

// checkReadable holds every message to what a user who never read Go can use.
func checkReadable(t *testing.T, errs Errors) {
	t.Helper()
	for _, e := range errs {
		if e.File == "" || e.Msg == "" {
			t.Errorf("%q lacks the file or the message", e)
		}
		if m := goNames.FindString(quoted.ReplaceAllString(e.Msg, `""`)); m != "" {
			t.Errorf("%q shows Go internals (%q)", e.Msg, m)
		}
	}
}

func TestErrorsKeepSecrets(t *testing.T) {
	tests := []struct {
		file    string
		secrets []string
	}{
		{"url_credentials.yml", []string{"hunter2", "s3cret", "admin"}},
		{"url_credentials_bad_escape.yml", []string{"hunter2", "%zz", "admin"}},
		{"url_token_query.yml", []string{"hunter2", "s3cret"}},
		{"url_api_key_query.yml", []string{"hunter2", "s3cret"}},
		{"key_mismatch.yml", pemBody(t, "testdata/other.key")},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			_, err := LoadFile("testdata/bad/" + tt.file)
			if err == nil {
				t.Fatal("no error")
			}
			for _, s := range tt.secrets {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q reveals %q", err, s)
				}
			}
		})
	}
}

// pemBody returns the base64 lines of a PEM file: the key material itself.
func pemBody(t *testing.T, file string) []string {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var body []string
	for _, l := range strings.Split(string(data), "\n") {
		if len(l) > 16 && !strings.HasPrefix(l, "-----") && !strings.HasPrefix(l, "#") {
			body = append(body, l)
		}
	}
	if len(body) == 0 {
		t.Fatalf("%s has no PEM body", file)
	}
	return body
}

// All problems come back at once, in file order, whichever stage found them.
func TestParseReportsEveryProblem(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{
			name: "validation",
			yaml: "concurrency: 0\nendpoints:\n  - url: http://a.example/\n  - name: b\n    address: b.example\n",
			want: []string{
				"mcp.yml:1: concurrency: must be at least 1",
				"mcp.yml:3: endpoints[0].name: is required",
				`mcp.yml:3: endpoints[0].url: must be an https:// URL, got scheme "http"`,
				"mcp.yml:5: endpoints[1].address: must be host:port: missing port in address",
			},
		},
		{
			name: "decoding",
			yaml: "interval: soon\nendpoints:\n  - name: a\n    urls: x\n    timeout: [1]\n",
			want: []string{
				`mcp.yml:1: interval: cannot parse "soon" as a duration (write it like 30s, 5m, 1h or 90d)`,
				"mcp.yml:4: endpoints[0].urls: unknown field; check its spelling and indentation",
				"mcp.yml:5: endpoints[0].timeout: must be a duration like 30s, 5m, 1h or 90d, not a list",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), "mcp.yml")
			if got, want := errString(err), strings.Join(tt.want, "\n"); got != want {
				t.Errorf("errors\n got %s\nwant %s", got, want)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

func TestEndpointMethods(t *testing.T) {
	tests := []struct {
		e                                  Endpoint
		hostPort, serverName, mcp, display string
	}{
		{Endpoint{Name: "a", URL: "https://mcp.example.com/mcp"}, "mcp.example.com:443", "mcp.example.com", TransportAuto, "a (https://mcp.example.com/mcp)"},
		{Endpoint{Name: "b", URL: "https://[::1]:8443/mcp", MCP: MCPConfig{Transport: TransportSSE}}, "[::1]:8443", "::1", TransportSSE, "b (https://[::1]:8443/mcp)"},
		{Endpoint{Name: "c", Address: "10.0.0.1:443", TLSConfig: TLSConfig{ServerName: "mcp.internal"}}, "10.0.0.1:443", "mcp.internal", TransportNone, "c (10.0.0.1:443)"},
		{Endpoint{Name: "d", URL: "https://admin:hunter2@mcp.example.com/"}, "mcp.example.com:443", "mcp.example.com", TransportAuto, "d (https://admin:xxxxx@mcp.example.com/)"},
	}
	for _, tt := range tests {
		t.Run(tt.e.Name, func(t *testing.T) {
			e := tt.e
			got := []string{e.HostPort(), e.ServerName(), e.MCPTransport(), e.String()}
			if want := []string{tt.hostPort, tt.serverName, tt.mcp, tt.display}; !reflect.DeepEqual(got, want) {
				t.Errorf("HostPort, ServerName, MCPTransport, String = %q, want %q", got, want)
			}
		})
	}
}

func TestPostureEnabled(t *testing.T) {
	off, on := false, true
	for _, tt := range []struct {
		posture *bool
		want    bool
	}{{nil, true}, {&on, true}, {&off, false}} {
		e := Endpoint{Posture: tt.posture}
		if got := e.PostureEnabled(); got != tt.want {
			t.Errorf("PostureEnabled with posture %v = %v, want %v", tt.posture, got, tt.want)
		}
	}
}

// --config.check promises every problem: each duplicate key is one, wherever
// it is.
func TestEveryDuplicateKeyIsReported(t *testing.T) {
	data := "interval: 30s\ntimeout: 5s\ninterval: 60s\nendpoints:\n  - name: a\n    url: https://x.example/mcp\n    name: b\ntimeout: 1s\n"
	_, err := Parse([]byte(data), "dup.yml")
	want := "dup.yml:3: interval: duplicate key; it is already set at line 1\n" +
		"dup.yml:7: endpoints[0].name: duplicate key; it is already set at line 5\n" +
		"dup.yml:8: timeout: duplicate key; it is already set at line 2"
	if err == nil || err.Error() != want {
		t.Errorf("error\n got %v\nwant %s", err, want)
	}
}
