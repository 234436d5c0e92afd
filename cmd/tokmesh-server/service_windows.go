//go:build windows

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/eventlog"

	"github.com/yndnr/tokmesh-go/internal/config"
	"github.com/yndnr/tokmesh-go/internal/logging"
)

// serviceName is the Windows service the installer registers
// (10-packaging §4; packaging/windows/tokmesh.wxs). It is also the event
// log source for failures that happen before the log file is open.
const serviceName = "TokMeshServer"

// Service-mode log files: <data_dir>\logs\tokmesh-server-YYYYMMDD.log, one
// per UTC day, the newest serviceLogKeep kept (10-packaging §4).
const (
	serviceLogDir  = "logs"
	serviceLogKeep = 14
)

// runAsService runs the node under the Windows service control manager when
// the process was started by it, and reports whether it did (ok) and the
// process exit code. Started any other way it returns ok=false at once and
// the command line behaves as on every other platform.
func runAsService(args []string) (code int, ok bool) {
	isService, err := svc.IsWindowsService()
	if err != nil || !isService {
		return 0, false
	}
	h := &serviceHandler{args: args}
	if err := svc.Run(serviceName, h); err != nil {
		eventError(fmt.Sprintf("tokmesh-server: service dispatcher: %v", err))
		return exitRuntime, true
	}
	return h.code, true
}

// serviceHandler implements svc.Handler: it runs the same node as the
// command line (runNode) with the service's command-line flags, turning
// Stop and Shutdown requests into the graceful shutdown SIGTERM triggers
// elsewhere.
type serviceHandler struct {
	args []string // the service's command line, e.g. --config C:\ProgramData\TokMesh\config.yaml
	code int      // process exit code once Execute returns
	// reload re-reads the service's configuration sources (config reload API).
	reload func() (*config.Config, []*config.Error)
}

const acceptStopShutdown = svc.AcceptStop | svc.AcceptShutdown

// Execute is called by the service control manager; the returned exit code
// is recorded as the service-specific exit code when non-zero.
func (h *serviceHandler) Execute(_ []string, req <-chan svc.ChangeRequest, status chan<- svc.Status) (bool, uint32) {
	status <- svc.Status{State: svc.StartPending, WaitHint: 30_000}

	cfg, info, code := h.loadConfig()
	if code != exitOK {
		h.code = code
		return true, uint32(code)
	}
	dataDir, err := filepath.Abs(cfg.Storage.DataDir)
	if err != nil {
		eventError(fmt.Sprintf("tokmesh-server: data dir %q: %v", cfg.Storage.DataDir, err))
		h.code = exitConfig
		return true, exitConfig
	}
	// The service has no console: restrict the data dir first, then log
	// into it.
	if err := restrictDataDir(dataDir); err != nil {
		eventError(fmt.Sprintf("tokmesh-server: cannot restrict the ACL of %s: %v", dataDir, err))
		h.code = exitRuntime
		return true, exitRuntime
	}
	logs := &dailyLog{dir: filepath.Join(dataDir, serviceLogDir), keep: serviceLogKeep, now: time.Now}
	defer logs.Close()
	logLevel.Set(cfg.Telemetry.Logging.SlogLevel())
	logger := logging.New(logs, logLevel)
	logger.Info("running as a Windows service", "component", "service", "service", serviceName, "log_dir", logs.dir)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() { done <- runNodeWithReload(ctx, cfg, info, logger, h.reload) }()

	// runNode has no start-up callback; the node reports readiness on /ready.
	// Start failures still end the service with their exit code below.
	status <- svc.Status{State: svc.Running, Accepts: acceptStopShutdown}
	for {
		select {
		case c := <-req:
			switch c.Cmd {
			case svc.Interrogate:
				status <- c.CurrentStatus
			case svc.Stop, svc.Shutdown:
				logger.Info("service stop requested", "control", controlName(c.Cmd))
				h.code = waitStopped(cancel, done, status, cfg.Server.Shutdown.Timeout)
				return h.code != exitOK, uint32(h.code)
			default:
				logger.Warn("unexpected service control request", "control", uint32(c.Cmd))
			}
		case rc := <-done:
			// The node stopped on its own (start or storage failure); it
			// logged why.
			h.code = rc
			return rc != exitOK, uint32(rc)
		}
	}
}

// loadConfig parses the service's flags and loads the configuration exactly
// as the run command does; failures go to the Windows event log (there is
// no console and the log file lives in the not yet known data dir).
func (h *serviceHandler) loadConfig() (*config.Config, config.LoadInfo, int) {
	lf := &loadFlags{}
	cmd := &cobra.Command{Use: "tokmesh-server", SilenceErrors: true, SilenceUsage: true}
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	lf.register(cmd)
	if err := cmd.ParseFlags(h.args); err != nil {
		eventError(fmt.Sprintf("tokmesh-server: service command line %q: %v", h.args, err))
		return nil, config.LoadInfo{}, exitUsage
	}
	if rest := cmd.Flags().Args(); len(rest) > 0 {
		eventError(fmt.Sprintf("tokmesh-server: service command line: unexpected arguments %q", rest))
		return nil, config.LoadInfo{}, exitUsage
	}
	opts, err := lf.options(cmd)
	if err != nil {
		eventError(fmt.Sprintf("tokmesh-server: service command line: %v", err))
		return nil, config.LoadInfo{}, exitUsage
	}
	cfg, info, errs := config.Load(opts)
	h.reload = func() (*config.Config, []*config.Error) {
		c, _, errs := config.Load(opts)
		return c, errs
	}
	if len(errs) > 0 {
		var b strings.Builder
		fmt.Fprintf(&b, "tokmesh-server: %d configuration error(s); not starting\n", len(errs))
		for _, e := range errs {
			b.WriteString(e.Error())
			b.WriteByte('\n')
		}
		eventError(b.String())
		return nil, info, exitConfig
	}
	return cfg, info, exitOK
}

// waitStopped cancels the node and reports StopPending, with a moving
// checkpoint, until runNode returns; it returns runNode's exit code.
func waitStopped(cancel context.CancelFunc, done <-chan int, status chan<- svc.Status, timeout time.Duration) int {
	// runNode bounds the shutdown by server.shutdown.timeout; the hint adds
	// a margin so the service manager does not give up first.
	hint := uint32((timeout + 10*time.Second) / time.Millisecond)
	checkpoint := uint32(1)
	status <- svc.Status{State: svc.StopPending, CheckPoint: checkpoint, WaitHint: hint}
	cancel()
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case code := <-done:
			return code
		case <-tick.C:
			checkpoint++
			status <- svc.Status{State: svc.StopPending, CheckPoint: checkpoint, WaitHint: hint}
		}
	}
}

func controlName(c svc.Cmd) string {
	if c == svc.Shutdown {
		return "shutdown"
	}
	return "stop"
}

// restrictDataDir creates dir and replaces its ACL with a protected one
// (no inheritance from C:\ProgramData, which lets every user read): full
// control for SYSTEM, Administrators and the account the service runs as;
// files and folders inside inherit it.
func restrictDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	sddl := "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"
	if u, err := windows.GetCurrentProcessToken().GetTokenUser(); err == nil {
		if sid := u.User.Sid.String(); sid != "S-1-5-18" { // not LocalSystem
			sddl += "(A;OICI;FA;;;" + sid + ")"
		}
	}
	sd, err := windows.SecurityDescriptorFromString(sddl)
	if err != nil {
		return err
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		return err
	}
	return windows.SetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, dacl, nil)
}

// eventError writes msg to the Application event log under serviceName,
// the only place a service can report before its log file is open. The
// installer registers the source; unregistered, Windows still keeps the
// text.
func eventError(msg string) {
	l, err := eventlog.Open(serviceName)
	if err != nil {
		return // nowhere left to report to
	}
	defer l.Close()
	_ = l.Error(1, msg) // best effort: there is no other channel
}

// dailyLog is the service's log output: JSON lines appended to
// dir/tokmesh-server-YYYYMMDD.log for the current UTC day. On the first
// write of a new day it opens the day's file and deletes the oldest files
// beyond keep. slog hands it one whole record per Write.
type dailyLog struct {
	dir  string
	keep int
	now  func() time.Time

	mu  sync.Mutex
	day string
	f   *os.File
}

func (d *dailyLog) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	day := d.now().UTC().Format("20060102")
	if d.f == nil || day != d.day {
		if err := d.open(day); err != nil {
			return 0, err
		}
	}
	return d.f.Write(p)
}

func (d *dailyLog) open(day string) error {
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(d.dir, "tokmesh-server-"+day+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if d.f != nil {
		d.f.Close()
	}
	d.f, d.day = f, day
	d.prune()
	return nil
}

// prune deletes all but the newest keep log files; the names sort by day.
func (d *dailyLog) prune() {
	files, err := filepath.Glob(filepath.Join(d.dir, "tokmesh-server-????????.log"))
	if err != nil || len(files) <= d.keep {
		return
	}
	sort.Strings(files)
	for _, f := range files[:len(files)-d.keep] {
		if err := os.Remove(f); err != nil {
			// Logged through the file itself: the only log there is.
			fmt.Fprintf(d.f, `{"time":%q,"level":"WARN","msg":"cannot remove old log file","file":%q,"error":%q}`+"\n",
				d.now().UTC().Format("2006-01-02T15:04:05.000Z07:00"), f, err.Error())
		}
	}
}

// Close closes the current file.
func (d *dailyLog) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		return nil
	}
	err := d.f.Close()
	d.f = nil
	return err
}

var _ io.Writer = (*dailyLog)(nil)
