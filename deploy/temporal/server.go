package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uiserveroptions "github.com/temporalio/ui-server/v2/server/server_options"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/membership/static"
	"go.temporal.io/server/common/primitives"
	"go.temporal.io/server/temporal"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"
)

const (
	// clusterName is the name of the single local cluster. It is persisted in
	// the database on first start, so it must not change between versions.
	clusterName = "active"
	// internalIP is where the history, matching and worker services listen.
	// Only this process talks to them, so they never leave loopback.
	internalIP = "127.0.0.1"
)

// devServer is a running Temporal server plus, optionally, its Web UI.
type devServer struct {
	opts     *options
	logger   log.Logger
	logLevel zap.AtomicLevel
	server   temporal.Server
	ui       *uiserver.Server
	uiErr    chan error       // receives once if the UI server exits
	conn     *grpc.ClientConn // our own client connection, used by bootstrap
	dbLock   io.Closer        // held (locked) for the process lifetime: no second server on the same state
	grpcAddr string           // host:port clients dial to reach the frontend
	uiURL    string           // base URL of the UI; empty when disabled
}

// startDevServer prepares the database, then starts the Temporal services
// and the UI. It returns once they are started, not once they are ready:
// bootstrap waits for that.
func startDevServer(opts *options) (*devServer, error) {
	logger, logLevel, err := newLogger(opts)
	if err != nil {
		return nil, err
	}

	// Fail early, with a readable message, if a public port is taken: the
	// server would fail later with a long fx error, and the UI server calls
	// os.Exit on a listen error.
	if err := checkPortFree(opts.IP, opts.Port); err != nil {
		return nil, fmt.Errorf("gRPC port: %w", err)
	}
	if opts.UIPort != 0 {
		if err := checkPortFree(opts.IP, opts.UIPort); err != nil {
			return nil, fmt.Errorf("UI port: %w", err)
		}
	}

	s := &devServer{
		opts:     opts,
		logger:   logger,
		logLevel: logLevel,
		uiErr:    make(chan error, 1),
		grpcAddr: net.JoinHostPort(dialableIP(opts.IP), strconv.Itoa(opts.Port)),
	}

	// history, matching and worker get free loopback ports picked now, so
	// several instances (for example a test's private one next to a demo on
	// 7233) can run side by side. With static membership (below) there are
	// no ringpop membership ports at all.
	ports, err := freePorts(internalIP, 3)
	if err != nil {
		return nil, err
	}
	// The frontend's HTTP API (used by Nexus) also gets a free port, on the
	// public IP. Without it the server warns at every start.
	httpPort, err := freePorts(opts.IP, 1)
	if err != nil {
		return nil, err
	}
	cfg := s.buildConfig(httpPort[0], ports[0], ports[1], ports[2])

	if err := s.prepareStore(&cfg.Persistence); err != nil {
		return nil, err
	}

	serverOpts, err := s.serverOptions(cfg)
	if err != nil {
		return nil, err
	}
	srv, err := temporal.NewServer(serverOpts...)
	if err != nil {
		return nil, fmt.Errorf("creating Temporal server: %w", err)
	}
	// Without temporal.InterruptOn, Start returns once the services run.
	// On failure the process exits right away, which releases whatever a
	// partly started server holds.
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("starting Temporal server: %w", err)
	}
	s.server = srv

	if opts.UIPort != 0 {
		if err := s.startUI(); err != nil {
			s.stop(stopTimeout)
			return nil, fmt.Errorf("starting the Web UI: %w", err)
		}
	}
	return s, nil
}

// newLogger builds the server's JSON logger, writing to stderr or --log-file.
// It is zap with an adjustable level (rather than log.BuildZapLogger) so
// stop can silence the noise the services log while shutting each other
// down, as the Temporal CLI does.
func newLogger(opts *options) (log.Logger, zap.AtomicLevel, error) {
	out := "stderr"
	if opts.LogFile != "" {
		out = opts.LogFile
	}
	level := zap.NewAtomicLevelAt(log.ParseZapLevel(opts.LogLevel))
	enc := log.DefaultZapEncoderConfig
	enc.CallerKey = zapcore.OmitKey // the server logs its own "logging-call-at"
	zl, err := zap.Config{
		Level:            level,
		Encoding:         "json",
		EncoderConfig:    enc,
		OutputPaths:      []string{out},
		ErrorOutputPaths: []string{out},
		DisableCaller:    true,
	}.Build()
	if err != nil {
		return nil, level, fmt.Errorf("opening log output %s: %w", out, err)
	}
	return log.NewZapLogger(zl), level, nil
}

// buildConfig returns a static server configuration: with SQLite, what
// `temporal server start-dev` uses (one cluster, one history shard, one store
// for execution and visibility, archival off); with PostgreSQL the same but
// for the stores and the shard count (persistenceConfig).
func (s *devServer) buildConfig(httpPort, historyPort, matchingPort, workerPort int) *config.Config {
	opts := s.opts
	var cfg config.Config

	cfg.Global.Membership.MaxJoinDuration = 30 * time.Second
	cfg.Global.Membership.BroadcastAddress = internalIP
	// No Global.Metrics and no PProf port: neither is needed in dev, and
	// fixed ports would collide between instances.

	cfg.Persistence = persistenceConfig(opts)

	cfg.ClusterMetadata = &cluster.Config{
		EnableGlobalNamespace:    false,
		FailoverVersionIncrement: 10,
		MasterClusterName:        clusterName,
		CurrentClusterName:       clusterName,
		ClusterInformation: map[string]cluster.ClusterInformation{
			clusterName: {
				Enabled:                true,
				InitialFailoverVersion: 1,
				RPCAddress:             s.grpcAddr,
				HTTPAddress:            net.JoinHostPort(dialableIP(opts.IP), strconv.Itoa(httpPort)),
				// ClusterID is left empty: the server generates one on first
				// start and keeps the persisted one afterwards.
			},
		},
	}
	cfg.DCRedirectionPolicy.Policy = "noop"

	cfg.Services = map[string]config.Service{
		string(primitives.FrontendService): {RPC: config.RPC{GRPCPort: opts.Port, HTTPPort: httpPort, BindOnIP: opts.IP}},
		string(primitives.HistoryService):  {RPC: config.RPC{GRPCPort: historyPort, BindOnIP: internalIP}},
		string(primitives.MatchingService): {RPC: config.RPC{GRPCPort: matchingPort, BindOnIP: internalIP}},
		string(primitives.WorkerService):   {RPC: config.RPC{GRPCPort: workerPort, BindOnIP: internalIP}},
	}

	cfg.Archival.History.State = "disabled"
	cfg.Archival.Visibility.State = "disabled"
	cfg.NamespaceDefaults.Archival.History.State = "disabled"
	cfg.NamespaceDefaults.Archival.Visibility.State = "disabled"

	// The worker service's system workflows dial the frontend through this.
	cfg.PublicClient.HostPort = s.grpcAddr
	cfg.Global.TLS = opts.TLS.serverConfig(s.serverName())
	return &cfg
}

func (s *devServer) serverOptions(cfg *config.Config) ([]temporal.ServerOption, error) {
	authorizer, err := authorization.GetAuthorizerFromConfig(&cfg.Global.Authorization)
	if err != nil {
		return nil, fmt.Errorf("creating authorizer: %w", err)
	}
	claimMapper, err := authorization.GetClaimMapperFromConfig(&cfg.Global.Authorization, s.logger)
	if err != nil {
		return nil, fmt.Errorf("creating claim mapper: %w", err)
	}

	hostOf := func(svc primitives.ServiceName, ip string) static.Hosts {
		return static.SingleLocalHost(net.JoinHostPort(ip, strconv.Itoa(cfg.Services[string(svc)].RPC.GRPCPort)))
	}

	dyn := dynamicconfig.StaticClient{
		// Same values as the Temporal CLI's dev server: a bigger mutable state
		// cache and more visibility requests per second than the defaults,
		// which the UI's list pages can otherwise exceed.
		dynamicconfig.HistoryCacheHostLevelMaxSize.Key():                 8096,
		dynamicconfig.FrontendMaxNamespaceVisibilityRPSPerInstance.Key(): 100,
	}

	return []temporal.ServerOption{
		temporal.WithConfig(cfg),
		temporal.ForServices(temporal.DefaultServices),
		// Static membership: every service lives in this process, so there
		// is no need for ringpop and its gossip ports.
		temporal.WithStaticHosts(map[primitives.ServiceName]static.Hosts{
			primitives.FrontendService: hostOf(primitives.FrontendService, dialableIP(s.opts.IP)),
			primitives.HistoryService:  hostOf(primitives.HistoryService, internalIP),
			primitives.MatchingService: hostOf(primitives.MatchingService, internalIP),
			primitives.WorkerService:   hostOf(primitives.WorkerService, internalIP),
		}),
		temporal.WithLogger(s.logger),
		temporal.WithAuthorizer(authorizer),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return claimMapper }),
		temporal.WithDynamicConfigClient(dyn),
	}, nil
}

func (s *devServer) startUI() error {
	uiTLS, err := s.opts.TLS.uiConfig(s.serverName())
	if err != nil {
		return err
	}
	uiHost := s.opts.IP
	if ip := net.ParseIP(uiHost); ip != nil && ip.To4() == nil {
		uiHost = "[" + uiHost + "]" // the UI server formats "host:port" itself
	}
	s.ui = uiserver.NewServer(uiserveroptions.WithConfigProvider(&uiconfig.Config{
		Host:                uiHost,
		Port:                s.opts.UIPort,
		TemporalGRPCAddress: s.grpcAddr,
		EnableUI:            true,
		DefaultNamespace:    defaultNamespace,
		// Plain HTTP on a dev machine: the CSRF cookie must not be Secure or
		// the browser drops it and every write action fails.
		CORS:     uiconfig.CORS{CookieInsecure: true},
		HideLogs: true,
		// There is no internet access here: do not fetch the news feed.
		DisableNewsFetch: true,
		TLS:              uiTLS,
	}))
	s.uiURL = "http://" + net.JoinHostPort(dialableIP(s.opts.IP), strconv.Itoa(s.opts.UIPort))
	go func() {
		// Start blocks until Stop; it returns nil after a normal Stop.
		err := s.ui.Start()
		if err == nil {
			err = errors.New("exited")
		}
		s.uiErr <- err
	}()
	return nil
}

// uiDisplay is the ui= value of the ready line.
func (s *devServer) uiDisplay() string {
	if s.uiURL == "" {
		return "disabled"
	}
	return s.uiURL
}

// stop shuts everything down and reports whether that finished in time.
func (s *devServer) stop(timeout time.Duration) bool {
	done := make(chan struct{})
	// While the services stop each other, in-flight polls and task queue
	// leases fail with "connection refused" and "context canceled" at warn
	// and error level, with stack traces. None of it is actionable, so the
	// logger goes quiet for the shutdown.
	s.logLevel.SetLevel(zapcore.FatalLevel)
	go func() {
		defer close(done)
		if s.ui != nil {
			s.ui.Stop()
		}
		if s.conn != nil {
			_ = s.conn.Close()
		}
		if err := s.server.Stop(); err != nil {
			s.logger.Warn("stopping Temporal server: " + err.Error())
		}
	}()
	select {
	case <-done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// serverName is the name this process's own clients expect in the frontend's certificate: the
// host they dial.
func (s *devServer) serverName() string {
	host, _, _ := net.SplitHostPort(s.grpcAddr)
	return host
}

// dialableIP maps a wildcard listen address to loopback, for addresses this
// process (and the ready line) hands to clients.
func dialableIP(ip string) string {
	switch parsed := net.ParseIP(ip); {
	case parsed == nil || !parsed.IsUnspecified():
		return ip
	case parsed.To4() != nil:
		return "127.0.0.1"
	default:
		return "::1"
	}
}

func checkPortFree(ip string, port int) error {
	addr := net.JoinHostPort(ip, strconv.Itoa(port))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("cannot listen on %s (another instance running?): %w", addr, err)
	}
	return l.Close()
}

// freePorts asks the kernel for n distinct free ports on ip. All listeners
// are held until every port is chosen so the same port is not returned twice.
// Another process could still grab one before the server binds it; that
// window is a few milliseconds.
func freePorts(ip string, n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			return nil, fmt.Errorf("finding a free port on %s: %w", ip, err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
