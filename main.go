// Command mcp_cert_exporter is a Prometheus exporter for the certificates and
// TLS health of MCP servers. main only wires the packages together.
package main

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
	toolkit "github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/mcpcert/mcp_cert_exporter/collector"
	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/web"
)

const name = "mcp_cert_exporter"

// shutdownGrace bounds how long SIGTERM waits for in-flight scrapes.
const shutdownGrace = 10 * time.Second

type serveFlags struct {
	configFile    string
	configCheck   bool
	telemetryPath string
	shard         collector.Shard
	web           *toolkit.FlagConfig
	log           *promslog.Config
}

// versionFile is the release version, so a plain `go build` reports it
// without ldflags.
//
//go:embed VERSION
var versionFile string

func main() {
	if version.Version == "" {
		version.Version = strings.TrimSpace(versionFile)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the command line: it parses args, writes to stdout and stderr, and
// returns the exit code, so tests can run it in-process.
func run(args []string, stdout, stderr io.Writer) int {
	app := kingpin.New(name, "Prometheus exporter for the certificates and TLS health of MCP servers.")
	app.UsageWriter(stdout)
	app.ErrorWriter(stderr)
	app.HelpFlag.Short('h')
	app.Version(version.Print(name))
	f := serveFlags{log: &promslog.Config{Writer: stderr}}
	app.Flag("config.file", "Configuration file.").Default("config.yml").StringVar(&f.configFile)
	app.Flag("config.check", "Validate the configuration file, print any problems and exit.").BoolVar(&f.configCheck)
	app.Flag("web.telemetry-path", "Path under which to expose metrics.").Default("/metrics").StringVar(&f.telemetryPath)
	app.Flag("shard", "Refresh and export only this replica's share of the targets: i/n is replica i (0-based) of n, "+
		"each target placed by a hash of its name; n is at most 1000.").Default("0/1").SetValue(&f.shard)
	f.web = kingpinflag.AddFlags(app, ":9879")
	promslogflag.AddFlags(app, f.log)
	serveCmd := app.Command("serve", "Run the exporter (the default).").Default()
	check := addCheckCommand(app)
	health := addHealthcheckCommand(app)

	cmd, err := app.Parse(args)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}
	switch {
	case cmd == check.cmd.FullCommand():
		return check.run(stdout)
	case cmd == health.cmd.FullCommand():
		return health.run(f.web, stderr)
	case f.configCheck:
		return checkConfig(f.configFile, stdout, stderr)
	case cmd == serveCmd.FullCommand():
		return serve(f)
	}
	return 2
}

func checkConfig(file string, stdout, stderr io.Writer) int {
	cfg, err := config.LoadFile(file)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: OK (%d endpoints, %d file groups)\n", file, len(cfg.Endpoints), len(cfg.Files))
	return 0
}

func serve(f serveFlags) int {
	logger := promslog.New(f.log)
	logger.Info("starting "+name, "version", version.Info(), "build_context", version.BuildContext())
	coll := collector.New(logger, collector.WithShard(f.shard))
	if err := coll.Reload(f.configFile); err != nil {
		logger.Error("cannot start without a valid configuration", "err", err)
		return 1
	}
	// coll is not registered: its handler serves its cached metrics itself,
	// merged with what this registry gathers.
	reg := prometheus.NewRegistry()
	reg.MustRegister(versioncollector.NewCollector(name), collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan struct{})
	go func() { coll.Run(ctx); close(done) }()

	reloads := make(chan chan error)
	stopping, drained := make(chan struct{}), make(chan struct{})
	srv := &http.Server{
		Handler:           routes(f, reg, coll, reloads, stopping, logger),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute, // idle keep-alive scrapers must not hold connections forever
	}
	go handleSignals(srv, coll, f.configFile, reloads, stopping, drained, logger)

	// On SIGTERM this returns as soon as Shutdown starts: probes are
	// cancelled while in-flight scrapes, which read only the cache, finish.
	err := toolkit.ListenAndServe(srv, f.web, logger)
	stop()
	<-done
	if errors.Is(err, http.ErrServerClosed) {
		<-drained
		logger.Info("stopped")
		return 0
	}
	logger.Error("server failed", "err", err)
	return 1
}

// handleSignals reloads on SIGHUP and /-/reload, and stops on SIGTERM or
// SIGINT: stopping is closed first, so that a reload request arriving now is
// refused instead of waiting out the grace period, and drained once
// in-flight requests finished.
func handleSignals(srv *http.Server, coll *collector.Collector, file string, reloads chan chan error,
	stopping, drained chan<- struct{}, logger *slog.Logger) {
	hup := make(chan os.Signal, 1)
	term := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	signal.Notify(term, syscall.SIGTERM, syscall.SIGINT)
	for {
		select {
		case <-hup:
			_ = coll.Reload(file)
		case reply := <-reloads:
			reply <- coll.Reload(file)
		case s := <-term:
			logger.Info("shutting down", "signal", s.String())
			close(stopping)
			ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
			if err := srv.Shutdown(ctx); err != nil {
				logger.Warn("in-flight requests cut short", "err", err)
			}
			cancel()
			close(drained)
			return
		}
	}
}

func routes(f serveFlags, reg *prometheus.Registry, coll *collector.Collector, reloads chan chan error,
	stopping <-chan struct{}, logger *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(f.telemetryPath, web.MetricsHandler(coll, reg, logger))
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "Healthy") })
	mux.HandleFunc("/-/reload", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "This endpoint requires a POST request.", http.StatusMethodNotAllowed)
			return
		}
		reply := make(chan error, 1)
		select {
		case reloads <- reply:
		case <-stopping:
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		case <-r.Context().Done():
			return
		}
		if err := <-reply; err != nil {
			http.Error(w, fmt.Sprintf("failed to reload config: %s", err), http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "Reloaded")
	})
	mux.Handle("/status", web.StatusHandler(coll))
	mux.Handle("/probe", coll.ProbeHandler(logger))
	if f.telemetryPath != "/" {
		mux.Handle("/", landingPage(f.telemetryPath, logger))
	}
	return mux
}

func landingPage(metricsPath string, logger *slog.Logger) http.Handler {
	page, err := toolkit.NewLandingPage(toolkit.LandingConfig{
		Name:        name,
		Description: "Certificate and TLS health of MCP servers",
		Version:     version.Info(),
		Profiling:   "false",
		Links: []toolkit.LandingLinks{
			{Address: metricsPath, Text: "Metrics"},
			{Address: "/status", Text: "Status", Description: "A summary, then every target most urgent first, with its failure reason and remedy"},
			{Address: "/-/healthy", Text: "Health"},
			{Address: "/probe", Text: "Probe", Description: "Probe ?target= with ?module= now (multi-target pattern; &debug=true explains)"},
		},
	})
	if err != nil {
		logger.Error("landing page", "err", err)
		return http.NotFoundHandler()
	}
	return page
}
