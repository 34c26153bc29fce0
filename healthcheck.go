package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/exporter-toolkit/web"
	"gopkg.in/yaml.v3"
)

// healthcheckCommand is `mcp_cert_exporter healthcheck`: the container
// health check for images without a shell or curl (distroless). It asks the
// exporter started with the same flags for /-/healthy.
type healthcheckCommand struct {
	cmd     *kingpin.CmdClause
	timeout time.Duration
}

func addHealthcheckCommand(app *kingpin.Application) *healthcheckCommand {
	c := &healthcheckCommand{}
	c.cmd = app.Command("healthcheck", "Exit 0 when the exporter at the first --web.listen-address answers /-/healthy; "+
		"pass the same --web.listen-address and --web.config.file as the exporter.")
	c.cmd.Flag("timeout", "Deadline for the request.").Default("5s").DurationVar(&c.timeout)
	return c
}

func (c *healthcheckCommand) run(flags *web.FlagConfig, stderr io.Writer) int {
	if err := c.check(flags); err != nil {
		fmt.Fprintf(stderr, "%s healthcheck: %v\n", name, err)
		return 1
	}
	return 0
}

func (c *healthcheckCommand) check(flags *web.FlagConfig) error {
	if flags.WebSystemdSocket != nil && *flags.WebSystemdSocket {
		return errors.New("--web.systemd-socket: the listen address is systemd's; check it with systemctl")
	}
	if len(*flags.WebListenAddresses) == 0 {
		return errors.New("no --web.listen-address")
	}
	wc, err := readWebConfig(*flags.WebConfigFile)
	if err != nil {
		return err
	}
	url, err := healthURL((*flags.WebListenAddresses)[0], wc.TLSConfig.TLSCert != "" || wc.TLSConfig.TLSCertPath != "")
	if err != nil {
		return err
	}
	client := &http.Client{
		Timeout: c.timeout,
		// The peer is this exporter on loopback, named by its listen
		// address rather than by its certificate's names: there is no
		// name to verify, only liveness to learn.
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, //nolint:gosec
	}
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
		return nil
	case resp.StatusCode == http.StatusUnauthorized && len(wc.Users) > 0:
		// Behind basic auth the password is not ours to know; a 401 from
		// the exporter's own auth layer shows it is up and serving.
		return nil
	}
	return fmt.Errorf("%s answered %s", url, resp.Status)
}

// readWebConfig reads the exporter-toolkit web configuration, or an empty one
// when no file is given.
func readWebConfig(file string) (web.Config, error) {
	var wc web.Config
	if file == "" {
		return wc, nil
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return wc, fmt.Errorf("--web.config.file: %w", err)
	}
	if err := yaml.Unmarshal(raw, &wc); err != nil {
		return wc, fmt.Errorf("--web.config.file %s: %w", file, err)
	}
	return wc, nil
}

// healthURL turns a listen address into the URL of /-/healthy on loopback:
// a wildcard host (":9879", "0.0.0.0:9879", "[::]:9879") becomes 127.0.0.1
// or ::1.
func healthURL(listen string, useTLS bool) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("--web.listen-address %q: %w", listen, err)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	scheme := "http"
	if useTLS {
		scheme = "https"
	}
	return fmt.Sprintf("%s://%s/-/healthy", scheme, net.JoinHostPort(host, port)), nil
}
