package cli

import (
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/yndnr/tokmesh-go/pkg/client"
)

func (a *app) apikeyCmd() *cobra.Command {
	return group("apikey", "Create, list, enable, disable and rotate API keys",
		"  tokmesh-cli apikey create --role issuer --description sso\n  tokmesh-cli apikey list --role admin\n  tokmesh-cli apikey create-emergency",
		a.apikeyCreate(), a.apikeyCreateEmergency(), a.apikeyList(), a.apikeyGet(),
		a.apikeyStatus("enable", "active"), a.apikeyStatus("disable", "disabled"), a.apikeyRotate())
}

// apikeyCreateEmergency creates a 24-hour admin key through the local
// admin socket, whatever the target says: the route exists nowhere else.
func (a *app) apikeyCreateEmergency() *cobra.Command {
	var desc string
	cmd := &cobra.Command{
		Use:   "create-emergency",
		Short: "Create a 24-hour admin key through the local admin socket",
		Long: `Create an admin API key that expires in 24 hours, for when no admin key is at hand.
It always goes through the admin socket of the server on this machine: a unix:PATH
or npipe:NAME target (or a profile with a socket) is used as given, any other -t is
ignored and the local socket is found as for -t local. The secret is printed once.`,
		Example: `  sudo -u tokmesh tokmesh-cli apikey create-emergency --description "lost admin key, ticket 4711"
  tokmesh-cli -t unix:/var/lib/tokmesh-server/admin.sock apikey create-emergency -o json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			target := "local"
			if rt, err := a.resolveTarget(); err == nil && (strings.HasPrefix(rt.target, "unix:") || strings.HasPrefix(rt.target, "npipe:")) {
				target = rt.target
			} else if a.s.target != "local" {
				a.notice("create-emergency always uses the local admin socket; ignoring target %q", a.s.target)
			}
			c, err := a.newClient(target, "", targetProfile{})
			if err != nil {
				return err
			}
			k, err := c.CreateEmergencyKey(a.ctx(cmd), desc)
			if err != nil {
				return err
			}
			a.warn("the API key secret is shown only once; store it now")
			if k.Warning != "" {
				a.warn("%s", k.Warning)
			}
			return a.emit(k, a.keyTable(&k.Key, "api_key", k.APIKey))
		},
	}
	cmd.Flags().StringVar(&desc, "description", "", "why it was created (recorded with the key and in the audit log)")
	return cmd
}

func (a *app) keyTable(k *client.Key, extra ...string) func(*tabwriter.Writer, bool) {
	return func(w *tabwriter.Writer, _ bool) {
		pairs := []string{"key_id", k.KeyID, "role", k.Role, "status", k.Status, "description", dash(k.Description),
			"allowlist", dash(strings.Join(k.Allowlist, ",")), "rate_limit", strconv.Itoa(k.RateLimit),
			"created_at", ts(k.CreatedAt), "created_by", dash(k.CreatedBy), "expires_at", neverTS(k.ExpiresAt),
			"last_used_at", neverTS(k.LastUsedAt)}
		if k.RotationGraceUntil != 0 {
			pairs = append(pairs, "rotation_grace_until", ts(k.RotationGraceUntil))
		}
		a.kv(w, append(pairs, extra...)...)
	}
}

func neverTS(ms int64) string {
	if ms == 0 {
		return "never"
	}
	return ts(ms)
}

func (a *app) apikeyCreate() *cobra.Command {
	var (
		req                  client.CreateKeyRequest
		expiresIn, expiresAt string
	)
	cmd := &cobra.Command{
		Use:   "create --role R",
		Short: "Create an API key and print its secret once",
		Example: `  tokmesh-cli apikey create --role issuer --description "SSO gateway" --expires-in 720h
  tokmesh-cli apikey create --role admin -o json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if req.Role == "" {
				return usageErr("--role is required (metrics, validator, issuer or admin)")
			}
			if expiresIn != "" && expiresAt != "" {
				return usageErr("--expires-in and --expires-at are mutually exclusive")
			}
			if expiresIn != "" {
				d, err := time.ParseDuration(expiresIn)
				if err != nil || d <= 0 {
					return usageErr("invalid --expires-in %q (want a duration such as 720h)", expiresIn)
				}
				req.ExpiresAt = time.Now().Add(d).UnixMilli()
			}
			if expiresAt != "" {
				t, err := parseFutureTime("expires-at", expiresAt)
				if err != nil {
					return err
				}
				req.ExpiresAt = t
			}
			if cmd.Flags().Changed("rate-limit") && req.RateLimit < 1 {
				return usageErr("--rate-limit must be at least 1")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			k, err := c.CreateKey(a.ctx(cmd), req)
			if err != nil {
				return err
			}
			a.warn("the API key secret is shown only once; store it now")
			if k.Warning != "" {
				a.warn("%s", k.Warning)
			}
			return a.emit(k, a.keyTable(&k.Key, "api_key", k.APIKey))
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Role, "role", "", "metrics|validator|issuer|admin (required)")
	f.StringVar(&req.Description, "description", "", "free text")
	f.StringSliceVar(&req.Allowlist, "allowlist", nil, "allowed client IPs/CIDRs, comma-separated")
	f.IntVar(&req.RateLimit, "rate-limit", 0, "requests per second (default: the server's)")
	f.StringVar(&expiresIn, "expires-in", "", "lifetime, e.g. 720h")
	f.StringVar(&expiresAt, "expires-at", "", "expiry time (RFC 3339)")
	return cmd
}

func (a *app) apikeyList() *cobra.Command {
	var o client.ListKeysOptions
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List API keys",
		Example: "  tokmesh-cli apikey list\n  tokmesh-cli apikey list --role issuer --status active -o json",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			list, err := c.ListKeys(a.ctx(cmd), o)
			if err != nil {
				return err
			}
			return a.emit(list, func(w *tabwriter.Writer, wide bool) {
				if wide {
					a.header(w, "KEY ID", "ROLE", "STATUS", "DESCRIPTION", "CREATED", "EXPIRES", "LAST USED", "RATE LIMIT")
				} else {
					a.header(w, "KEY ID", "ROLE", "STATUS", "DESCRIPTION", "CREATED")
				}
				for _, k := range list.Items {
					if wide {
						row(w, k.KeyID, k.Role, k.Status, dash(k.Description), ts(k.CreatedAt), neverTS(k.ExpiresAt), neverTS(k.LastUsedAt), strconv.Itoa(k.RateLimit))
					} else {
						row(w, k.KeyID, k.Role, k.Status, dash(k.Description), ts(k.CreatedAt))
					}
				}
				w.Flush()
				a.footer(w, list.Total)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Role, "role", "", "filter by role")
	f.StringVar(&o.Status, "status", "", "filter by status (active|disabled)")
	f.IntVar(&o.Page, "page", 0, "page number (from 1)")
	f.IntVar(&o.Size, "size", 0, "page size (1..100)")
	return cmd
}

func (a *app) apikeyGet() *cobra.Command {
	return &cobra.Command{
		Use:     "get ID",
		Short:   "Show one API key",
		Example: "  tokmesh-cli apikey get tmak-01jh8w…",
		Args:    exactArgs(1, "ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			k, err := c.GetKey(a.ctx(cmd), args[0])
			if err != nil {
				return err
			}
			return a.emit(k, a.keyTable(k))
		},
	}
}

// apikeyStatus builds enable (safe) and disable (dangerous).
func (a *app) apikeyStatus(verb, status string) *cobra.Command {
	var force bool
	dangerous := status == "disabled"
	cmd := &cobra.Command{
		Use:     verb + " ID",
		Short:   strings.ToUpper(verb[:1]) + verb[1:] + " an API key",
		Example: fmt.Sprintf("  tokmesh-cli apikey %s tmak-01jh8w…", verb),
		Args:    exactArgs(1, "ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if dangerous {
				if err := a.confirm(force, fmt.Sprintf("Disable API key %s? Its callers will be refused.", args[0]), ""); err != nil {
					return err
				}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			res, err := c.SetKeyStatus(a.ctx(cmd), args[0], status)
			if err != nil {
				return err
			}
			if res.Warning != "" {
				a.warn("%s", res.Warning)
			}
			return a.emit(res, a.keyTable(&res.Key))
		},
	}
	if dangerous {
		cmd.Short += " (dangerous)"
		cmd.Flags().BoolVar(&force, "force", false, "do not ask for confirmation")
	}
	return cmd
}

func (a *app) apikeyRotate() *cobra.Command {
	var (
		grace string
		force bool
	)
	cmd := &cobra.Command{
		Use:     "rotate ID",
		Short:   "Issue a new secret for an API key (dangerous)",
		Example: "  tokmesh-cli apikey rotate tmak-01jh8w… --grace 1h\n  tokmesh-cli apikey rotate tmak-01jh8w… --force -o json",
		Args:    exactArgs(1, "ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			secs := int64(-1)
			if grace != "" {
				d, err := time.ParseDuration(grace)
				if err != nil || d < 0 {
					return usageErr("invalid --grace %q (want a duration such as 1h, 0s..24h)", grace)
				}
				secs = int64(d / time.Second)
			}
			if err := a.confirm(force, fmt.Sprintf("Rotate API key %s? The old secret stops working after the grace period.", args[0]), ""); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			res, err := c.RotateKey(a.ctx(cmd), args[0], secs)
			if err != nil {
				return err
			}
			a.warn("the new API key secret is shown only once; store it now")
			return a.emit(res, func(w *tabwriter.Writer, _ bool) {
				a.kv(w, "key_id", res.KeyID, "api_key", res.APIKey, "old_secret_valid_until", ts(res.OldSecretValidUntil))
			})
		},
	}
	cmd.Flags().StringVar(&grace, "grace", "", "how long the old secret stays valid (default: the server's rotation_grace)")
	cmd.Flags().BoolVar(&force, "force", false, "do not ask for confirmation")
	return cmd
}
