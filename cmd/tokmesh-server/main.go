// Command tokmesh-server runs a TokMesh node (08-config §2).
//
//	tokmesh-server [flags]                      run a node
//	tokmesh-server config default               print the commented default configuration
//	tokmesh-server config validate [flags]      validate file + env + flags (exit 0 / 78)
//	tokmesh-server keygen --out FILE            write a new master key (mode 0600)
//	tokmesh-server version                      print version information
//
// This file only wires flags, configuration and the logger; runNode (run.go)
// runs the node.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"

	"github.com/yndnr/tokmesh-go/internal/logging"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/yndnr/tokmesh-go/internal/buildinfo"
	"github.com/yndnr/tokmesh-go/internal/config"
)

// Exit codes (08-config §2).
const (
	exitOK      = 0
	exitRuntime = 1  // bind error, storage failure, join timeout
	exitUsage   = 64 // bad command line
	exitData    = 65 // unrecoverable data (corruption, key ID mismatch)
	exitConfig  = 78 // configuration error
)

// logLevel is the level of the process logger. runNode may Set it when a
// reload changes telemetry.logging.level (a hot-reloadable key).
var logLevel = new(slog.LevelVar)

func main() {
	// Started by the Windows service manager: run as a service (service_windows.go).
	if code, ok := runAsService(os.Args[1:]); ok {
		os.Exit(code)
	}
	code := run(os.Args[1:], os.Stdout, os.Stderr)
	stopProfile()
	os.Exit(code)
}

// stopProfile ends the CPU profile of a -tags pgoprofile build
// (pgo_profile.go); a no-op otherwise.
var stopProfile = func() {}

// exitCode ends a command with a specific exit code; its message, if any,
// has already been printed.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit %d", int(e)) }

// run executes the command line and returns the process exit code. Cobra
// errors (unknown command or flag, bad arguments) are usage errors: exit 64.
func run(args []string, stdout, stderr io.Writer) int {
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	err := root.Execute()
	var ec exitCode
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ec):
		return int(ec)
	default:
		fmt.Fprintf(stderr, "tokmesh-server: %v\nRun 'tokmesh-server --help' for usage.\n", err)
		return exitUsage
	}
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	lf := &loadFlags{}
	root := &cobra.Command{
		Use:   "tokmesh-server [flags]",
		Short: "TokMesh session cache and token-validation server",
		Long: "tokmesh-server runs a TokMesh node. With no flags and no configuration file it starts\n" +
			"a working standalone node: data dir ./data, HTTP on 127.0.0.1:5080, RESP on\n" +
			"127.0.0.1:6379, local admin socket ./data/admin.sock.\n\n" +
			"Configuration precedence: flag > environment (TOKMESH_<KEY>) > file (--config or\n" +
			"TOKMESH_CONFIG) > default. `tokmesh-server config default` lists every key.",
		Args:          cobra.NoArgs,
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := lf.options(cmd)
			if err != nil {
				return err
			}
			cfg, info, errs := config.Load(opts)
			if len(errs) > 0 {
				for _, e := range errs {
					fmt.Fprintln(stderr, e.Error())
				}
				fmt.Fprintf(stderr, "tokmesh-server: %d configuration error(s); not starting\n", len(errs))
				return exitCode(exitConfig)
			}
			logLevel.Set(cfg.Telemetry.Logging.SlogLevel())
			logger := logging.New(stdout, logLevel)
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			// A reload (SIGHUP, POST /admin/v1/config/reload) re-reads the
			// same sources: this file, the environment and these flags.
			reload := func() (*config.Config, []*config.Error) {
				c, _, errs := config.Load(opts)
				return c, errs
			}
			if code := runNodeWithReload(ctx, cfg, info, logger, reload); code != exitOK {
				return exitCode(code)
			}
			return nil
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.CompletionOptions.DisableDefaultCmd = true
	lf.register(root)
	root.AddCommand(newConfigCmd(stdout, stderr), newKeygenCmd(stdout, stderr), newVersionCmd(stdout))
	return root
}

// loadFlags are the configuration flags of the run and config validate
// commands (08-config §1).
type loadFlags struct {
	config    string
	sets      []string
	shortcuts []string // values, parallel to config.Shortcuts
}

func (lf *loadFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVarP(&lf.config, "config", "c", "", "configuration file (YAML); default: env TOKMESH_CONFIG, else none")
	fs.StringArrayVar(&lf.sets, "set", nil, "set a configuration key: --set KEY=VALUE (repeatable; lists comma-separated)")
	lf.shortcuts = make([]string, len(config.Shortcuts))
	for i, s := range config.Shortcuts {
		fs.StringVar(&lf.shortcuts[i], s.Flag, "", s.Usage)
	}
}

// options turns the parsed flags into config.LoadOptions: --set entries in
// order, then the shortcuts (so a shortcut wins over --set of the same key).
func (lf *loadFlags) options(cmd *cobra.Command) (config.LoadOptions, error) {
	opts := config.LoadOptions{ConfigFile: lf.config}
	if cmd.Flags().Changed("config") && lf.config == "" {
		return opts, errors.New("--config needs a file name")
	}
	for _, s := range lf.sets {
		fv, err := config.ParseSet(s)
		if err != nil {
			return opts, err
		}
		opts.Flags = append(opts.Flags, fv)
	}
	for i, s := range config.Shortcuts {
		if cmd.Flags().Changed(s.Flag) {
			opts.Flags = append(opts.Flags, config.FlagValue{Flag: "--" + s.Flag, Key: s.Key, Value: lf.shortcuts[i]})
		}
	}
	return opts, nil
}

func newVersionCmd(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print version, commit, build date and Go version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			fmt.Fprintln(stdout, buildinfo.String("tokmesh-server"))
			return nil
		},
	}
}

// ensureTwoProcs gives the runtime a second P for sync_mode=always when it
// chose one (one CPU, or a CPU affinity of one) and the operator did not
// set GOMAXPROCS. In that mode every write group waits for the WAL
// writer's fsync; with a single P nothing else runs until the runtime
// notices the blocked syscall, so each fsync covered one or two records
// (measured on one pinned CPU: 6k creates/s, 21-22k with two Ps). In the
// other modes the second P costs validate tail latency (the kernel
// time-slices two threads on one CPU), so they keep the runtime's choice.
// See docs/decisions.md D17.
func ensureTwoProcs(syncMode string) {
	if syncMode == "always" && os.Getenv("GOMAXPROCS") == "" && runtime.GOMAXPROCS(0) < 2 {
		runtime.GOMAXPROCS(2)
	}
}
