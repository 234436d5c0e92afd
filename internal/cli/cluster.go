package cli

import (
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/yndnr/tokmesh-go/pkg/client"
)

func (a *app) clusterCmd() *cobra.Command {
	return group("cluster", "Cluster health, members, rebalancing and node removal",
		"  tokmesh-cli cluster status -o wide\n  tokmesh-cli cluster nodes\n  tokmesh-cli cluster remove tmnd-b --force",
		a.clusterStatus(), a.clusterNodes(), a.clusterRebalance(), a.clusterRemove())
}

func (a *app) clusterStatus() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show cluster health, members and partitions (-o wide adds the partition map)",
		Long: `Show the cluster summary: mode, leader, health and warnings, member counts and
partition counts. -o wide also reads the partition table and prints it, with runs of
partitions that share primary, replicas and state folded into ranges. A standalone
server describes itself as a one-node cluster.`,
		Example: "  tokmesh-cli cluster status\n  tokmesh-cli cluster status -o wide\n  tokmesh-cli cluster status -o json",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			st, err := c.ClusterStatus(a.ctx(cmd))
			if err != nil {
				return err
			}
			var parts *client.PartitionTable
			if a.s.output == "wide" {
				if parts, err = c.ClusterPartitions(a.ctx(cmd)); err != nil {
					return err
				}
			}
			return a.emit(st, func(w *tabwriter.Writer, wide bool) {
				rebalance := "idle"
				if st.Rebalance.Running {
					rebalance = fmt.Sprintf("running %d%%", st.Rebalance.Progress)
				}
				a.kv(w, "mode", st.Mode, "cluster_id", dash(st.ClusterID), "leader_id", dash(st.LeaderID),
					"term", strconv.FormatUint(st.Term, 10), "voters", list(st.Voters), "health", st.Health,
					"warnings", list(st.Warnings),
					"nodes", fmt.Sprintf("%d alive, %d suspect, %d dead", st.Nodes.Alive, st.Nodes.Suspect, st.Nodes.Dead),
					"partitions", fmt.Sprintf("%d total, %d unavailable, %d under-replicated, %d moving",
						st.Partitions.Total, st.Partitions.Unavailable, st.Partitions.UnderReplicated, st.Partitions.Moving),
					"rebalance", rebalance)
				if !wide || parts == nil {
					return
				}
				w.Flush()
				fmt.Fprintf(w, "\nPartition table (version %d):\n", parts.TableVersion)
				a.header(w, "PARTITIONS", "PRIMARY", "REPLICAS", "EPOCH", "STATE")
				for _, r := range foldPartitions(parts.Partitions) {
					row(w, r.span, dash(r.primary), r.replicas, strconv.FormatUint(r.epoch, 10), r.state)
				}
				w.Flush()
				a.footer(w, len(parts.Partitions))
			})
		},
	}
}

type partitionRun struct {
	span, primary, replicas, state string
	epoch                          uint64
}

// foldPartitions folds consecutive partitions with the same primary,
// replicas, epoch and state into one row ("0-255").
func foldPartitions(ps []client.Partition) []partitionRun {
	var out []partitionRun
	first := 0
	key := func(p client.Partition) partitionRun {
		reps := make([]string, len(p.Replicas))
		for i, r := range p.Replicas {
			reps[i] = r.NodeID
			if !r.InSync {
				reps[i] += "(lagging)"
			}
		}
		return partitionRun{primary: p.Primary, replicas: list(reps), state: p.State, epoch: p.Epoch}
	}
	for i := range ps {
		if i+1 < len(ps) && key(ps[i+1]) == key(ps[first]) && ps[i+1].Partition == ps[i].Partition+1 {
			continue
		}
		r := key(ps[first])
		r.span = strconv.Itoa(ps[first].Partition)
		if i > first {
			r.span += "-" + strconv.Itoa(ps[i].Partition)
		}
		out = append(out, r)
		first = i + 1
	}
	return out
}

func (a *app) clusterNodes() *cobra.Command {
	return &cobra.Command{
		Use:     "nodes",
		Short:   "List cluster members with their state, load and latency",
		Example: "  tokmesh-cli cluster nodes\n  tokmesh-cli cluster nodes -o wide\n  tokmesh-cli cluster nodes -o json",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			res, err := c.ClusterNodes(a.ctx(cmd))
			if err != nil {
				return err
			}
			return a.emit(res, func(w *tabwriter.Writer, wide bool) {
				if wide {
					a.header(w, "NODE ID", "STATE", "ADDRESS", "PRIMARY", "REPLICA", "SESSIONS", "QPS", "P99 MS",
						"VERSION", "RAFT ROLE", "LAG MS", "SKEW MS", "LEASE", "LAST SEEN")
				} else {
					a.header(w, "NODE ID", "STATE", "ADDRESS", "PRIMARY", "REPLICA", "SESSIONS", "QPS", "P99 MS")
				}
				for _, n := range res.Nodes {
					cols := []string{n.NodeID, n.State, dash(n.AdvertiseAddress), strconv.Itoa(n.PartitionsPrimary),
						strconv.Itoa(n.PartitionsReplica), strconv.Itoa(n.Sessions), f2(n.QPS), f2(n.P99Ms)}
					if wide {
						cols = append(cols, dash(n.Version), dash(n.RaftRole), strconv.FormatInt(n.ReplicationLagMs, 10),
							strconv.FormatInt(n.ClockSkewMs, 10), strconv.FormatBool(n.LeaseValid), ts(n.LastSeen))
					}
					row(w, cols...)
				}
				w.Flush()
				a.footer(w, len(res.Nodes))
			})
		},
	}
}

func (a *app) clusterRebalance() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "rebalance",
		Short: "Start moving partitions to even out the members (dangerous)",
		Long: `Ask the leader to plan and start partition moves so that primaries and replicas
are spread evenly. Moves copy data between nodes and briefly add load. A standalone
server refuses (exit 1, TM-CLST-4001).`,
		Example: "  tokmesh-cli cluster rebalance\n  tokmesh-cli cluster rebalance --force -o json",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.confirm(force, "Start a cluster rebalance? Partitions will move between nodes.", ""); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			res, err := c.Rebalance(a.ctx(cmd))
			if err != nil {
				return err
			}
			a.notice("Rebalance started; follow it with `tokmesh-cli cluster status`.")
			return a.emit(res, func(w *tabwriter.Writer, _ bool) {
				a.kv(w, "planned_moves", strconv.Itoa(res.PlannedMoves))
			})
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "do not ask for confirmation")
	return cmd
}

func (a *app) clusterRemove() *cobra.Command {
	var noDrain, force bool
	cmd := &cobra.Command{
		Use:   "remove NODE_ID",
		Short: "Remove a node from the cluster, draining it first (dangerous)",
		Long: `Remove a member. By default its partitions are moved away first (state
"draining"); --no-drain removes it at once and relies on the replicas that are in
sync. A standalone server refuses (exit 1, TM-CLST-4001).`,
		Example: "  tokmesh-cli cluster remove tmnd-b\n  tokmesh-cli cluster remove tmnd-b --no-drain --force -o json",
		Args:    exactArgs(1, "NODE_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := fmt.Sprintf("Remove node %s from the cluster?", args[0])
			if noDrain {
				q = fmt.Sprintf("Remove node %s WITHOUT draining it? Sessions whose only in-sync copy is there are lost.", args[0])
			}
			if err := a.confirm(force, q, ""); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			res, err := c.RemoveNode(a.ctx(cmd), args[0], noDrain)
			if err != nil {
				return withHint(err, "TM-ADMIN-4041", "check the node ID; `tokmesh-cli cluster nodes` lists the members")
			}
			return a.emit(res, func(w *tabwriter.Writer, _ bool) {
				a.kv(w, "node_id", res.NodeID, "status", res.Status)
			})
		},
	}
	cmd.Flags().BoolVar(&noDrain, "no-drain", false, "remove at once without moving its partitions first (sends force: true)")
	cmd.Flags().BoolVar(&force, "force", false, "do not ask for confirmation")
	return cmd
}

// nodeIDs lists member IDs for completion.
func nodeIDs(res *client.ClusterNodes) []string {
	out := make([]string, 0, len(res.Nodes))
	for _, n := range res.Nodes {
		out = append(out, strings.TrimSpace(n.NodeID))
	}
	return out
}
