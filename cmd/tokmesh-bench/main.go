// Command tokmesh-bench is TokMesh's load generator (07-tools §2). This
// file only wires flags to internal/bench and maps the result to an exit
// code: 0 ok, 1 failed run, 64 usage, 69 target unreachable.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"github.com/yndnr/tokmesh-go/internal/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	tty := isatty.IsTerminal(os.Stderr.Fd()) || isatty.IsCygwinTerminal(os.Stderr.Fd())
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv, tty)
	stop()
	os.Exit(code)
}

// run parses args, runs the benchmark and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string, stderrTTY bool) int {
	cmd, res := newRootCmd(ctx, stdout, stderr, getenv, stderrTTY)
	cmd.SetArgs(args)
	if err := cmd.Execute(); err != nil {
		fmt.Fprintf(stderr, "Error: %v\nRun 'tokmesh-bench --help' for usage.\n", err)
		return bench.ExitUsage
	}
	if !res.ran {
		return bench.ExitOK // --help
	}
	if res.err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", res.err)
		var be *bench.Error
		if errors.As(res.err, &be) && be.Code == bench.ExitUsage {
			fmt.Fprintln(stderr, "Run 'tokmesh-bench --help' for usage.")
		}
	}
	return bench.ExitCode(res.err)
}

// outcome is what the root command's run left behind.
type outcome struct {
	ran bool
	err error
}

// newRootCmd builds the command (also used by packaging/gen for the man
// page and completions).
func newRootCmd(ctx context.Context, stdout, stderr io.Writer, getenv func(string) string, stderrTTY bool) (*cobra.Command, *outcome) {
	cfg := bench.DefaultConfig()
	res := &outcome{}
	cmd := &cobra.Command{
		Use:   "tokmesh-bench --scenario validate|create|mixed|revoke-storm --protocol http|https|resp|resp-tls --target ADDR [flags]",
		Short: "Load generator for TokMesh, with an optional side-by-side run against Redis",
		Long: `tokmesh-bench drives a TokMesh node over HTTP, HTTPS, RESP or RESP-TLS and reports
throughput, errors by code and HDR latency percentiles (p50/p90/p99/p99.9/max).
With --rate it runs an open loop whose latencies count from each request's
scheduled send time (coordinated-omission correct). With --target-redis it runs
the equivalent pattern against Redis and reports TokMesh/Redis ratios.

The API key (--api-key or TOKMESH_API_KEY) needs the issuer role to preload,
create or revoke sessions, and a rate limit above the load you drive.`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(c *cobra.Command, _ []string) error {
			res.ran = true
			if cfg.APIKey == "" {
				cfg.APIKey = getenv("TOKMESH_API_KEY")
			}
			_, res.err = bench.Run(ctx, cfg, bench.Output{Stdout: stdout, Stderr: stderr, Progress: stderrTTY && !cfg.NoProgress})
			return nil
		},
	}
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	f := cmd.Flags()
	f.SortFlags = false
	f.StringVar(&cfg.Scenario, "scenario", cfg.Scenario, "validate | create | mixed | revoke-storm")
	f.StringVar(&cfg.Protocol, "protocol", cfg.Protocol, "http | https | resp | resp-tls")
	f.StringVar(&cfg.Target, "target", "", "URL for http/https, host:port for resp/resp-tls (default http://127.0.0.1:5080 / 127.0.0.1:6379)")
	f.StringVar(&cfg.APIKey, "api-key", "", "API key <key_id>:<secret> (default $TOKMESH_API_KEY)")
	f.StringVar(&cfg.CAFile, "ca-file", "", "CA certificate (PEM) that verifies the server, for https/resp-tls")
	f.StringVar(&cfg.CertFile, "cert-file", "", "client certificate (PEM) for mTLS")
	f.StringVar(&cfg.KeyFile, "key-file", "", "client private key (PEM) for mTLS")
	f.IntVarP(&cfg.Concurrency, "concurrency", "c", cfg.Concurrency, "connections: workers in closed loop, max in flight in open loop")
	f.Float64Var(&cfg.Rate, "rate", 0, "> 0: open loop at this many requests/s, latency from the scheduled send time")
	f.DurationVar(&cfg.Duration, "duration", cfg.Duration, "measured phase (the first of --duration and --requests stops)")
	f.Int64Var(&cfg.Requests, "requests", 0, "measured requests (0 = no limit)")
	f.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "warm-up before measuring (excluded)")
	f.IntVar(&cfg.Preload, "preload", cfg.Preload, "sessions created before measuring")
	f.IntVar(&cfg.Users, "users", cfg.Users, "distinct user IDs (creates go round-robin, to stay under the per-user quota)")
	f.DurationVar(&cfg.TTL, "ttl", cfg.TTL, "session TTL (whole seconds)")
	f.BoolVar(&cfg.Touch, "touch", false, "validate with touch")
	f.StringVar(&cfg.Mix, "mix", cfg.Mix, "operation weights of the mixed scenario")
	f.Float64Var(&cfg.InvalidRatio, "invalid-ratio", 0, "share of validations with unknown tokens (0..1)")
	f.IntVar(&cfg.Pipeline, "pipeline", cfg.Pipeline, "commands in flight per RESP connection (like redis-benchmark -P)")
	f.StringVar(&cfg.ReportFile, "report", "", "write the JSON report to this file")
	f.StringVar(&cfg.CompareFile, "compare", "", "print this run's ratios against an earlier --report file")
	f.BoolVar(&cfg.NoProgress, "no-progress", false, "no live progress line (it shows only when stderr is a TTY)")
	f.Float64Var(&cfg.MaxErrorRate, "max-error-rate", cfg.MaxErrorRate, "exit 1 when errors/requests is above this")
	f.StringVar(&cfg.TargetRedis, "target-redis", "", "also run the equivalent pattern against this Redis (host:port)")
	f.StringVar(&cfg.RedisPassword, "redis-password", "", "password of --target-redis")

	return cmd, res
}
