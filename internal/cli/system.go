package cli

import (
	"fmt"
	"sort"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/yndnr/tokmesh-go/pkg/client"
)

func (a *app) systemCmd() *cobra.Command {
	return group("system", "Node status, health probes, garbage collection, audit log and WAL",
		"  tokmesh-cli system status\n  tokmesh-cli system ready && echo serving\n  tokmesh-cli system audit --since 1h --action apikey.create",
		a.systemStatus(), a.systemHealth(), a.systemReady(), a.systemGC(), a.systemAudit(), a.systemWAL())
}

func f2(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }

func (a *app) systemStatus() *cobra.Command {
	return &cobra.Command{
		Use:     "status",
		Short:   "Show the node's status: version, readiness, sessions, memory, traffic",
		Example: "  tokmesh-cli system status\n  tokmesh-cli -t prod system status -o wide\n  tokmesh-cli system status -o json",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			st, err := c.Summary(a.ctx(cmd))
			if err != nil {
				return err
			}
			return a.emit(st, func(w *tabwriter.Writer, wide bool) {
				ready := "ready"
				if !st.Ready {
					ready = "not_ready"
				}
				pairs := []string{"node_id", st.NodeID, "version", st.Version, "mode", st.Mode,
					"started_at", ts(st.StartedAt), "uptime", humanDuration(st.UptimeSeconds), "ready", ready,
					"maintenance", strconv.FormatBool(st.Maintenance),
					"sessions.live", strconv.Itoa(st.Sessions.Live), "sessions.tombstones", strconv.Itoa(st.Sessions.Tombstones),
					"memory.rss", humanBytes(int64(st.Memory.RSSBytes)), "memory.heap", humanBytes(int64(st.Memory.HeapBytes)),
					"qps", f2(st.QPS), "p99_ms", f2(st.P99Ms),
					"wal.sync_mode", st.WAL.SyncMode, "wal.last_seq", strconv.FormatUint(st.WAL.LastSeq, 10),
					"cipher", dash(st.Cipher)}
				if wide {
					pairs = append(pairs, "commit", dash(st.Commit), "go_version", st.GoVersion, "goroutines", strconv.Itoa(st.Goroutines),
						"key_id", dash(st.KeyID), "audit_last_hash", dash(st.AuditLastHash),
						"cluster.cluster_id", dash(st.Cluster.ClusterID), "cluster.leader_id", dash(st.Cluster.LeaderID),
						"cluster.raft_role", dash(st.Cluster.RaftRole), "cluster.lease_valid", strconv.FormatBool(st.Cluster.LeaseValid),
						"cluster.partitions_primary", strconv.Itoa(st.Cluster.PartitionsPrimary),
						"cluster.partitions_replica", strconv.Itoa(st.Cluster.PartitionsReplica))
				}
				a.kv(w, pairs...)
			})
		},
	}
}

func (a *app) systemHealth() *cobra.Command {
	return &cobra.Command{
		Use:   "health",
		Short: "Check that the server process answers (no API key needed)",
		Long: `Call the liveness probe GET /health. It needs no API key and answers whenever the
process can; use "system ready" to know whether the node serves requests.`,
		Example: "  tokmesh-cli system health\n  tokmesh-cli -t https://tokmesh.internal:5443 system health -o json",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.clientWith(false)
			if err != nil {
				return err
			}
			status, err := c.Health(a.ctx(cmd))
			if err != nil {
				return err
			}
			out := map[string]string{"status": status}
			return a.emit(out, func(w *tabwriter.Writer, _ bool) {
				fmt.Fprintln(w, status)
			})
		},
	}
}

func (a *app) systemReady() *cobra.Command {
	return &cobra.Command{
		Use:   "ready",
		Short: "Check that the node serves requests (exit 0 ready, 1 not ready)",
		Long: `Call the readiness probe GET /ready (no API key needed). Exit 0 when the node
serves business requests; exit 1 while it recovers, restores a backup, shuts down or
(in a cluster) has no valid lease, with the failing checks printed.`,
		Example: "  tokmesh-cli system ready\n  until tokmesh-cli -q system ready; do sleep 1; done\n  tokmesh-cli system ready -o json",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.clientWith(false)
			if err != nil {
				return err
			}
			r, err := c.Ready(a.ctx(cmd))
			if err != nil {
				return err
			}
			if err := a.emit(r, func(w *tabwriter.Writer, _ bool) {
				line := r.Status
				if r.Code != "" {
					line += " (code " + r.Code + ")"
				}
				fmt.Fprintln(w, line)
				w.Flush()
				if len(r.Checks) == 0 {
					return
				}
				a.header(w, "CHECK", "STATE")
				names := make([]string, 0, len(r.Checks))
				for k := range r.Checks {
					names = append(names, k)
				}
				sort.Strings(names)
				for _, k := range names {
					row(w, k, r.Checks[k])
				}
			}); err != nil {
				return err
			}
			if !r.IsReady() {
				return errSilentFailure
			}
			return nil
		},
	}
}

func (a *app) systemGC() *cobra.Command {
	var typ string
	cmd := &cobra.Command{
		Use:   "gc [--type expired|memory|all]",
		Short: "Sweep expired sessions and/or return free memory to the OS",
		Long: `Run a garbage collection on the node: "expired" sweeps expired sessions now,
"memory" returns free heap memory to the operating system, "all" (default) does
both. The server refuses the same type twice within 60 seconds (exit 1,
TM-ADMIN-4291).`,
		Example: "  tokmesh-cli system gc\n  tokmesh-cli system gc --type expired -o json",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch typ {
			case "expired", "memory", "all":
			default:
				return usageErr("invalid --type %q (want expired, memory or all)", typ)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			stop := a.spin("Collecting garbage (" + typ + ")…")
			res, err := c.GC(a.ctx(cmd), typ)
			stop()
			if err != nil {
				return err
			}
			return a.emit(res, func(w *tabwriter.Writer, _ bool) {
				a.kv(w, "type", res.Type, "cleaned_count", strconv.Itoa(res.CleanedCount),
					"freed", humanBytes(int64(res.FreedBytes)), "duration_ms", strconv.FormatInt(res.DurationMs, 10))
			})
		},
	}
	cmd.Flags().StringVar(&typ, "type", "all", "what to collect: expired|memory|all")
	return cmd
}

// auditTime renders a stored audit time (RFC 3339, UTC) as local time.
func auditTime(s string) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return dash(s)
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func (a *app) systemAudit() *cobra.Command {
	var (
		o            client.AuditQuery
		since, until string
	)
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Query the node's audit log, newest first",
		Long: `Query the audit log of the node answering, newest first. --since and --until take
RFC 3339 times or durations ago (15m, 2h, 7d).`,
		Example: `  tokmesh-cli system audit --since 1h
  tokmesh-cli system audit --action apikey.create --actor LOCAL_ADMIN -o wide
  tokmesh-cli system audit --since 2026-01-01T00:00:00Z --until 24h --size 100 -o json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			now := time.Now()
			var err error
			if since != "" {
				if o.Start, err = parseTime("since", since, now); err != nil {
					return err
				}
			}
			if until != "" {
				if o.End, err = parseTime("until", until, now); err != nil {
					return err
				}
			}
			if o.Start > 0 && o.End > 0 && o.End < o.Start {
				return usageErr("--until is before --since")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			list, err := c.AuditLogs(a.ctx(cmd), o)
			if err != nil {
				return err
			}
			return a.emit(list, func(w *tabwriter.Writer, wide bool) {
				if wide {
					a.header(w, "SEQ", "TIME", "ACTOR", "ROLE", "ACTION", "RESOURCE", "RESULT", "CODE", "CLIENT IP", "REQUEST ID")
				} else {
					a.header(w, "TIME", "ACTOR", "ACTION", "RESOURCE", "RESULT", "CODE")
				}
				for _, r := range list.Items {
					if wide {
						row(w, strconv.FormatUint(r.Seq, 10), auditTime(r.Time), dash(r.Actor), dash(r.Role), r.Action,
							dash(r.Resource), dash(r.Result), dash(r.Code), dash(r.ClientIP), dash(r.RequestID))
					} else {
						row(w, auditTime(r.Time), dash(r.Actor), r.Action, dash(r.Resource), dash(r.Result), dash(r.Code))
					}
				}
				w.Flush()
				a.footer(w, list.Total)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&since, "since", "", "records at or after this time (RFC 3339 or duration ago: 15m, 7d)")
	f.StringVar(&until, "until", "", "records at or before this time (RFC 3339 or duration ago)")
	f.StringVar(&o.Actor, "actor", "", "API key ID, LOCAL_ADMIN or system")
	f.StringVar(&o.Action, "action", "", "event name, e.g. apikey.create, session.revoke, gc.run, admin.read")
	f.StringVar(&o.Result, "result", "", "attempt|success|failure")
	f.IntVar(&o.Page, "page", 0, "page number (from 1)")
	f.IntVar(&o.Size, "size", 0, "page size (1..100)")
	return cmd
}

func (a *app) systemWAL() *cobra.Command {
	return &cobra.Command{
		Use:     "wal",
		Short:   "Show the node's write-ahead log: segments, sequence numbers, last snapshot",
		Example: "  tokmesh-cli system wal\n  tokmesh-cli system wal -o json",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			st, err := c.WALStatus(a.ctx(cmd))
			if err != nil {
				return err
			}
			return a.emit(st, func(w *tabwriter.Writer, wide bool) {
				failures := strconv.FormatUint(st.FsyncFailures, 10)
				if st.FsyncFailures > 0 {
					failures += " failed"
				}
				pairs := []string{"dir", st.Dir, "sync_mode", st.SyncMode, "sync_revocations", strconv.FormatBool(st.SyncRevocations),
					"segments", strconv.Itoa(st.Segments), "total_size", humanBytes(st.TotalBytes),
					"first_seq", strconv.FormatUint(st.FirstSeq, 10), "last_seq", strconv.FormatUint(st.LastSeq, 10),
					"last_fsync_at", ts(st.LastFsyncAt), "fsync_failures", failures,
					"cipher", dash(st.Cipher), "key_id", dash(st.KeyID),
					"last_snapshot.file", dash(st.LastSnapshot.File),
					"last_snapshot.covered_seq", strconv.FormatUint(st.LastSnapshot.CoveredSeq, 10),
					"last_snapshot.created_at", ts(st.LastSnapshot.CreatedAt)}
				if wide {
					pairs = append(pairs, "total_bytes", strconv.FormatInt(st.TotalBytes, 10))
				}
				a.kv(w, pairs...)
			})
		},
	}
}
