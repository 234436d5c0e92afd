package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/yndnr/tokmesh-go/internal/buildinfo"
	"github.com/yndnr/tokmesh-go/pkg/client"
)

func exactArgs(n int, names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) == n:
			return nil
		case n == 0:
			return usageErr("%q takes no arguments, got %q", cmd.CommandPath(), args[0])
		case len(args) < n:
			return usageErr("missing argument %s (usage: %s)", strings.Join(names[len(args):], " "), cmd.UseLine())
		}
		return usageErr("too many arguments: %s takes %s, got %d", cmd.CommandPath(), strings.Join(names, " "), len(args))
	}
}

// ---- version ----

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the CLI version, and the server's when reachable",
		Example: "  tokmesh-cli version\n  tokmesh-cli version -o json",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := struct {
				Client string `json:"client"`
				Server string `json:"server,omitempty"`
				Target string `json:"target,omitempty"`
			}{Client: buildinfo.Version}
			if c, err := a.client(); err == nil {
				out.Target = c.Target()
				ctx, cancel := context.WithTimeout(a.ctx(cmd), min(a.s.timeout, 3*time.Second))
				if st, err := c.Status(ctx); err == nil {
					out.Server = st.Version
				}
				cancel()
			}
			return a.emit(out, func(w *tabwriter.Writer, _ bool) {
				fmt.Fprintln(w, buildinfo.String("tokmesh-cli"))
				if out.Server != "" {
					fmt.Fprintf(w, "server %s (%s)\n", out.Server, out.Target)
				} else {
					fmt.Fprintln(w, "server: not reachable")
				}
			})
		},
	}
}

// ---- session ----

func (a *app) sessionCmd() *cobra.Command {
	return group("session", "Create, inspect, validate and revoke sessions",
		"  tokmesh-cli session create -u u-1001 --ttl 2h\n  tokmesh-cli session list -u u-1001\n  tokmesh-cli session revoke-all -u u-1001",
		a.sessionCreate(), a.sessionGet(), a.sessionList(), a.sessionTouch(), a.sessionRenew(),
		a.sessionRevoke(), a.sessionRevokeAll(), a.sessionValidate())
}

func (a *app) sessionTable(s *client.Session) func(*tabwriter.Writer, bool) {
	return func(w *tabwriter.Writer, wide bool) {
		pairs := []string{"id", s.ID, "user_id", s.UserID, "device_id", dash(s.DeviceID),
			"created_at", ts(s.CreatedAt), "expires_at", ts(s.ExpiresAt), "last_active", ts(s.LastActive),
			"created_by", dash(s.CreatedBy), "ip_address", dash(s.IPAddress)}
		if wide {
			pairs = append(pairs, "user_agent", dash(s.UserAgent), "last_access_ip", dash(s.LastAccessIP),
				"last_access_ua", dash(s.LastAccessUA), "idle_timeout", strconv.FormatInt(s.IdleTimeout, 10)+"s",
				"version", strconv.FormatUint(s.Version, 10))
		}
		keys := make([]string, 0, len(s.Data))
		for k := range s.Data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			pairs = append(pairs, "data."+k, s.Data[k])
		}
		a.kv(w, pairs...)
	}
}

func (a *app) sessionCreate() *cobra.Command {
	var (
		req           client.CreateSessionRequest
		ttl, dataJSON string
		data          []string
		tokenStdin    bool
	)
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a session and print its token once",
		Example: `  tokmesh-cli session create -u u-1001 --device-id laptop --ttl 2h --data role=admin
  printf '%s' "$TOKEN" | tokmesh-cli session create -u u-1001 --token-stdin`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if req.UserID == "" {
				return usageErr("--user-id is required")
			}
			if ttl != "" {
				s, err := positiveSeconds("ttl", ttl)
				if err != nil {
					return err
				}
				req.TTLSeconds = s
			}
			if dataJSON != "" {
				if err := json.Unmarshal([]byte(dataJSON), &req.Data); err != nil {
					return dataErr("invalid --data-json: %v (want a JSON object of strings)", err)
				}
			}
			for _, kv := range data {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return usageErr("invalid --data %q (want key=value)", kv)
				}
				if req.Data == nil {
					req.Data = map[string]string{}
				}
				req.Data[k] = v
			}
			if tokenStdin {
				b, err := io.ReadAll(io.LimitReader(a.env.Stdin, 4096))
				if err != nil {
					return dataErr("cannot read the token from stdin: %v", err)
				}
				req.Token = strings.TrimSpace(string(b))
				if req.Token == "" {
					return dataErr("no token on stdin")
				}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			res, err := c.CreateSession(a.ctx(cmd), req)
			if err != nil {
				return err
			}
			if res.Token != "" {
				a.warn("the session token is shown only once; store it now")
			}
			return a.emit(res, func(w *tabwriter.Writer, _ bool) {
				pairs := []string{"session_id", res.SessionID, "expires_at", ts(res.ExpiresAt)}
				if res.Token != "" {
					pairs = append(pairs, "token", res.Token)
				}
				if res.EvictedSessionID != "" {
					pairs = append(pairs, "evicted_session_id", res.EvictedSessionID)
				}
				a.kv(w, pairs...)
			})
		},
	}
	f := cmd.Flags()
	f.StringVarP(&req.UserID, "user-id", "u", "", "user ID (required)")
	f.StringVar(&req.DeviceID, "device-id", "", "device ID")
	f.StringVar(&ttl, "ttl", "", "time to live, e.g. 2h (default: the server's session.ttl.default)")
	f.StringArrayVar(&data, "data", nil, "session data key=value (repeatable)")
	f.StringVar(&dataJSON, "data-json", "", "session data as a JSON object of strings")
	f.BoolVar(&tokenStdin, "token-stdin", false, "read a client-supplied token from stdin")
	return cmd
}

func (a *app) sessionGet() *cobra.Command {
	return &cobra.Command{
		Use:     "get ID",
		Short:   "Show one session",
		Example: "  tokmesh-cli session get tmss-01jh8w…\n  tokmesh-cli session get tmss-01jh8w… -o json",
		Args:    exactArgs(1, "ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			s, err := c.GetSession(a.ctx(cmd), args[0])
			if err != nil {
				return err
			}
			return a.emit(s, a.sessionTable(s))
		},
	}
}

func (a *app) sessionList() *cobra.Command {
	var (
		o                                        client.ListSessionsOptions
		createdAfter, createdBefore, activeAfter string
		all                                      bool
	)
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List live sessions",
		Example: "  tokmesh-cli session list -u u-1001\n  tokmesh-cli session list --created-after 15m --all -o json",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			now := time.Now()
			var err error
			for _, t := range []struct {
				flag, v string
				dst     *int64
			}{{"created-after", createdAfter, &o.CreatedAfter}, {"created-before", createdBefore, &o.CreatedBefore}, {"active-after", activeAfter, &o.ActiveAfter}} {
				if t.v != "" {
					if *t.dst, err = parseTime(t.flag, t.v, now); err != nil {
						return err
					}
				}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			var list *client.SessionList
			if all {
				o.Page, o.Size = 1, 100
				list = &client.SessionList{Items: []client.Session{}, Page: 1}
				for {
					p, err := c.ListSessions(a.ctx(cmd), o)
					if err != nil {
						return err
					}
					list.Items = append(list.Items, p.Items...)
					if len(p.Items) < o.Size || len(list.Items) >= p.Total || (o.Page+1)*o.Size > 10000 {
						break
					}
					o.Page++
				}
				list.Size, list.Total = len(list.Items), len(list.Items)
			} else if list, err = c.ListSessions(a.ctx(cmd), o); err != nil {
				return err
			}
			return a.emit(list, func(w *tabwriter.Writer, wide bool) {
				if wide {
					a.header(w, "ID", "USER", "DEVICE", "CREATED", "EXPIRES", "LAST ACTIVE", "CREATED BY", "IP")
				} else {
					a.header(w, "ID", "USER", "CREATED", "EXPIRES")
				}
				for _, s := range list.Items {
					if wide {
						row(w, s.ID, s.UserID, dash(s.DeviceID), ts(s.CreatedAt), ts(s.ExpiresAt), ts(s.LastActive), dash(s.CreatedBy), dash(s.IPAddress))
					} else {
						row(w, s.ID, s.UserID, ts(s.CreatedAt), ts(s.ExpiresAt))
					}
				}
				w.Flush()
				a.footer(w, list.Total)
			})
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.UserID, "user-id", "u", "", "user ID")
	f.StringVar(&o.DeviceID, "device-id", "", "device ID")
	f.StringVar(&o.CreatedBy, "created-by", "", "API key ID or LOCAL_ADMIN")
	f.StringVar(&o.IPAddress, "ip", "", "IP or CIDR (creation or last access)")
	f.StringVar(&createdAfter, "created-after", "", "RFC 3339 time or duration ago (15m)")
	f.StringVar(&createdBefore, "created-before", "", "RFC 3339 time or duration ago")
	f.StringVar(&activeAfter, "active-after", "", "RFC 3339 time or duration ago")
	f.StringVar(&o.SortBy, "sort-by", "", "created_at|last_active")
	f.StringVar(&o.SortOrder, "sort-order", "", "desc|asc")
	f.IntVar(&o.Page, "page", 0, "page number (from 1)")
	f.IntVar(&o.Size, "size", 0, "page size (1..100)")
	f.BoolVar(&all, "all", false, "follow all pages")
	return cmd
}

func (a *app) sessionTouch() *cobra.Command {
	return &cobra.Command{
		Use:     "touch ID",
		Short:   "Refresh a session's last activity",
		Example: "  tokmesh-cli session touch tmss-01jh8w…",
		Args:    exactArgs(1, "ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			s, err := c.Touch(a.ctx(cmd), args[0])
			if err != nil {
				return err
			}
			return a.emit(s, a.sessionTable(s))
		},
	}
}

func (a *app) sessionRenew() *cobra.Command {
	var ttl string
	cmd := &cobra.Command{
		Use:     "renew ID --ttl DUR",
		Short:   "Set a session's remaining time to live",
		Example: "  tokmesh-cli session renew tmss-01jh8w… --ttl 4h",
		Args:    exactArgs(1, "ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if ttl == "" {
				return usageErr("--ttl is required")
			}
			secs, err := positiveSeconds("ttl", ttl)
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			s, err := c.Renew(a.ctx(cmd), args[0], secs)
			if err != nil {
				return err
			}
			return a.emit(s, a.sessionTable(s))
		},
	}
	cmd.Flags().StringVar(&ttl, "ttl", "", "new time to live, e.g. 4h (required)")
	return cmd
}

func (a *app) sessionRevoke() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "revoke ID",
		Short:   "Revoke one session (dangerous)",
		Example: "  tokmesh-cli session revoke tmss-01jh8w…\n  tokmesh-cli session revoke tmss-01jh8w… --force",
		Args:    exactArgs(1, "ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.confirm(force, fmt.Sprintf("Revoke session %s?", args[0]), ""); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			res, err := c.Revoke(a.ctx(cmd), args[0])
			if err != nil {
				return err
			}
			return a.emit(res, func(w *tabwriter.Writer, _ bool) {
				a.kv(w, "session_id", res.SessionID, "revoked", strconv.FormatBool(res.Revoked))
			})
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "do not ask for confirmation")
	return cmd
}

func (a *app) sessionRevokeAll() *cobra.Command {
	var (
		user  string
		force bool
	)
	cmd := &cobra.Command{
		Use:     "revoke-all -u USER",
		Short:   "Revoke every live session of a user (dangerous)",
		Example: "  tokmesh-cli session revoke-all -u u-1001\n  tokmesh-cli session revoke-all -u u-1001 --force -o json",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if user == "" {
				return usageErr("--user-id is required")
			}
			if err := a.confirm(force, fmt.Sprintf("Revoke ALL live sessions of user %q?", user), user); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			res, err := c.RevokeUser(a.ctx(cmd), user, "")
			if err != nil {
				return err
			}
			return a.emit(res, func(w *tabwriter.Writer, _ bool) {
				a.kv(w, "user_id", res.UserID, "revoked_count", strconv.Itoa(res.RevokedCount))
			})
		},
	}
	cmd.Flags().StringVarP(&user, "user-id", "u", "", "user ID (required)")
	cmd.Flags().BoolVar(&force, "force", false, "do not ask for confirmation")
	return cmd
}

func (a *app) sessionValidate() *cobra.Command {
	var (
		token string
		touch bool
	)
	cmd := &cobra.Command{
		Use:   "validate [--token T]",
		Short: "Validate a token (exit 0 valid, 1 invalid)",
		Example: `  printf '%s' "$TOKEN" | tokmesh-cli session validate
  tokmesh-cli session validate --token "$TOKEN" --touch -o json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("token") {
				if a.env.StdinTTY() {
					fmt.Fprint(a.env.Stderr, "Token: ")
				}
				b, err := io.ReadAll(io.LimitReader(a.env.Stdin, 4096))
				if err != nil {
					return dataErr("cannot read the token from stdin: %v", err)
				}
				token = strings.TrimSpace(string(b))
			}
			if token == "" {
				return usageErr("no token: pass --token or pipe it on stdin")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			res, err := c.Validate(a.ctx(cmd), token, touch)
			if err != nil {
				return err
			}
			if err := a.emit(res, func(w *tabwriter.Writer, wide bool) {
				if res.Valid && res.Session != nil {
					fmt.Fprintln(w, "VALID")
					w.Flush()
					a.sessionTable(res.Session)(w, wide)
					return
				}
				code, msg := "", ""
				if res.Error != nil {
					code, msg = res.Error.Code, res.Error.Message
				}
				fmt.Fprintf(w, "INVALID: %s (code %s)\n", msg, code)
			}); err != nil {
				return err
			}
			if !res.Valid {
				return errSilentFailure
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&token, "token", "", "the token (default: read from stdin)")
	cmd.Flags().BoolVar(&touch, "touch", false, "also refresh the session's last activity")
	return cmd
}
