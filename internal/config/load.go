package config

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/yndnr/tokmesh-go/internal/crypt"
)

// Environment variables with a fixed meaning (08-config §1).
const (
	// EnvPrefix starts every configuration environment variable.
	EnvPrefix = "TOKMESH_"
	// EnvConfig names the configuration file when --config is not given.
	EnvConfig = "TOKMESH_CONFIG"
)

// nonKeyEnv are TOKMESH_* variables that are not configuration keys and
// must not be warned about.
var nonKeyEnv = map[string]bool{
	EnvConfig:            true,
	crypt.EnvKey:         true, // TOKMESH_ENCRYPTION_KEY
	"TOKMESH_TARGET":     true, // tokmesh-cli
	"TOKMESH_API_KEY":    true,
	"TOKMESH_OUTPUT":     true,
	"TOKMESH_TIMEOUT":    true,
	"TOKMESH_CLI_CONFIG": true,
}

// FlagValue is one command-line override: --set KEY=VALUE or a shortcut.
type FlagValue struct {
	Flag  string // flag as the user wrote it, e.g. "--set" or "--data-dir"
	Key   string // configuration key
	Value string
}

// Shortcut is a command-line flag that sets one key (08-config §1).
type Shortcut struct {
	Flag  string // flag name without dashes
	Key   string
	Usage string
}

// Shortcuts are the flags of tokmesh-server besides --set.
var Shortcuts = []Shortcut{
	{"data-dir", "storage.data_dir", "data directory (storage.data_dir)"},
	{"log-level", "telemetry.logging.level", "log level: debug, info, warn, error (telemetry.logging.level)"},
	{"http-address", "server.http.address", "plaintext HTTP listener host:port (server.http.address)"},
	{"resp-address", "server.resp.address", "plaintext RESP listener host:port (server.resp.address)"},
	{"node-id", "cluster.node_id", "cluster node ID (cluster.node_id)"},
}

// ParseSet splits a --set argument "KEY=VALUE".
func ParseSet(arg string) (FlagValue, error) {
	k, v, ok := strings.Cut(arg, "=")
	k = strings.TrimSpace(k)
	if !ok || k == "" {
		return FlagValue{}, fmt.Errorf("--set %q: want KEY=VALUE", arg)
	}
	return FlagValue{Flag: "--set", Key: k, Value: v}, nil
}

// LoadOptions are the inputs of Load besides defaults.
type LoadOptions struct {
	// ConfigFile is the --config/-c value; "" falls back to env TOKMESH_CONFIG.
	ConfigFile string
	// Environ is the environment in os.Environ form; nil means os.Environ().
	Environ []string
	// Flags are the command-line overrides, applied in order (later wins).
	Flags []FlagValue
}

// LoadInfo describes where the configuration came from, for the config.load
// audit event and startup log. It never holds values.
type LoadInfo struct {
	File     string   // configuration file path, "" if none
	EnvVars  []string // names of the TOKMESH_* variables used, sorted
	Flags    []string // flags used, e.g. "--config", "--data-dir", "--set storage.wal.sync_mode"
	Warnings []string // e.g. unknown TOKMESH_* variables (by name), insecure binds
}

// Load builds the configuration from defaults, the file, the environment and
// the flags (precedence flag > env > file > default, each source overriding
// only the keys it names) and validates it. It returns every problem found;
// the Config is never nil but must not be used when errors are returned.
func Load(opts LoadOptions) (*Config, LoadInfo, []*Error) {
	environ := opts.Environ
	if environ == nil {
		environ = os.Environ()
	}
	env := environMap(environ)
	c := Default()
	var info LoadInfo
	var errs []*Error
	origin := map[string]string{} // key -> source of its value, for error messages

	path, src := opts.ConfigFile, "--config"
	if path != "" {
		info.Flags = append(info.Flags, "--config")
	} else if p := env[EnvConfig]; p != "" {
		path, src = p, EnvConfig
		info.EnvVars = append(info.EnvVars, EnvConfig)
	}
	if path != "" {
		info.File = path
		data, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, &Error{Code: CodeFileUnreadable, Key: src, Value: path, Message: "cannot read configuration file: " + osErrText(err), Expected: "a readable YAML file"})
		} else {
			errs = append(errs, applyYAML(c, data, path, origin)...)
		}
	}

	errs = append(errs, applyEnv(c, env, &info, origin)...)

	for _, f := range opts.Flags {
		name := f.Flag
		if name == "--set" {
			name = "--set " + f.Key
		}
		info.Flags = append(info.Flags, name)
		l, ok := schema().byKey[f.Key]
		if !ok {
			errs = append(errs, unknownKeyErr(f.Key, f.Value, f.Flag, ""))
			continue
		}
		v, err := l.parse(f.Value)
		if err != nil {
			e := l.parseErr(f.Value, err)
			e.Source = f.Flag
			errs = append(errs, e)
			continue
		}
		l.set(c, v)
		origin[l.key] = f.Flag
	}

	for _, e := range c.ValidateWith(ValidateOptions{Environ: environ}) {
		if e.Source == "" {
			e.Source = origin[e.Key]
		}
		errs = append(errs, e)
	}
	info.Warnings = append(info.Warnings, c.Warnings()...)
	return c, info, errs
}

// applyEnv applies TOKMESH_<KEY> variables ("__" between levels).
func applyEnv(c *Config, env map[string]string, info *LoadInfo, origin map[string]string) []*Error {
	names := make([]string, 0, len(env))
	for k := range env {
		if strings.HasPrefix(k, EnvPrefix) {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	var errs []*Error
	for _, name := range names {
		if nonKeyEnv[name] {
			if name == crypt.EnvKey && env[name] != "" {
				info.EnvVars = append(info.EnvVars, name)
			}
			continue
		}
		key := strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(name, EnvPrefix)), "__", ".")
		l, ok := schema().byKey[key]
		if !ok || l.envName() != name {
			msg := "environment variable " + name + " is not a configuration key; ignored"
			if s := suggestKey(key); s != "" {
				msg += " (did you mean " + schema().byKey[s].envName() + "?)"
			}
			info.Warnings = append(info.Warnings, msg)
			continue
		}
		info.EnvVars = append(info.EnvVars, name)
		val := env[name]
		v, err := l.parse(val)
		if err != nil {
			e := l.parseErr(val, err)
			e.Source = name
			errs = append(errs, e)
			continue
		}
		l.set(c, v)
		origin[l.key] = name
	}
	sort.Strings(info.EnvVars)
	return errs
}

// FromYAML returns defaults overlaid with the YAML document alone,
// validated as if no TOKMESH_* variable and no flag were set (so
// security.encryption.key_file, when set, is checked). POST
// /admin/v1/config/validate and `tokmesh-cli config server validate` use it.
func FromYAML(data []byte) (*Config, []*Error) {
	c := Default()
	errs := applyYAML(c, data, "config_yaml", map[string]string{})
	errs = append(errs, c.ValidateWith(ValidateOptions{Environ: []string{}})...)
	return c, errs
}

// applyYAML overlays the keys present in a YAML document on c.
func applyYAML(c *Config, data []byte, src string, origin map[string]string) []*Error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return []*Error{{Code: CodeInvalidValue, Source: src, Message: "invalid YAML: " + err.Error(), Expected: "a YAML mapping of configuration keys"}}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil // empty file: all defaults
	}
	root := resolve(doc.Content[0])
	if isNull(root) {
		return nil
	}
	var errs []*Error
	walkYAML(c, schema().root, root, src, &errs, origin)
	return errs
}

func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func walkYAML(c *Config, sec *section, n *yaml.Node, src string, errs *[]*Error, origin map[string]string) {
	where := sec.key
	if where == "" {
		where = "(top level)"
	}
	if n.Kind != yaml.MappingNode {
		*errs = append(*errs, &Error{Code: CodeInvalidValue, Key: sec.key, Value: nodeText(n), Source: src, Message: "wrong type at " + where, Expected: "a mapping of keys"})
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := resolve(n.Content[i]), resolve(n.Content[i+1])
		name := kn.Value
		key := name
		if sec.key != "" {
			key = sec.key + "." + name
		}
		if kn.Kind != yaml.ScalarNode || name == "" {
			*errs = append(*errs, &Error{Code: CodeInvalidValue, Key: sec.key, Source: src, Message: fmt.Sprintf("invalid key at line %d", kn.Line), Expected: "a key name"})
			continue
		}
		if seen[name] {
			*errs = append(*errs, &Error{Code: CodeInvalidValue, Key: key, Source: src, Message: fmt.Sprintf("duplicate key at line %d", kn.Line), Expected: "each key once"})
			continue
		}
		seen[name] = true
		if l, ok := schema().byKey[key]; ok {
			text, ok := leafText(l, vn)
			if !ok {
				*errs = append(*errs, &Error{Code: CodeInvalidValue, Key: key, Value: nodeText(vn), Source: src, Message: fmt.Sprintf("wrong type at line %d", vn.Line), Expected: l.kind.syntaxText()})
				continue
			}
			v, err := l.parse(text)
			if err != nil {
				e := l.parseErr(text, err)
				e.Source = src
				*errs = append(*errs, e)
				continue
			}
			l.set(c, v)
			origin[key] = src
			continue
		}
		if sub, ok := schema().sections[key]; ok {
			if isNull(vn) {
				continue
			}
			walkYAML(c, sub, vn, src, errs, origin)
			continue
		}
		*errs = append(*errs, unknownKeyErr(key, "", src, fmt.Sprintf(" at line %d", kn.Line)))
	}
}

// leafText turns a YAML value node into configuration text. Lists accept a
// sequence of scalars (or a comma-separated scalar); null is an empty
// string or list and invalid for other types.
func leafText(l *leaf, n *yaml.Node) (string, bool) {
	switch n.Kind {
	case yaml.ScalarNode:
		if isNull(n) {
			return "", l.kind == kindString || l.kind == kindStrings
		}
		return n.Value, true
	case yaml.SequenceNode:
		if l.kind != kindStrings {
			return "", false
		}
		parts := make([]string, 0, len(n.Content))
		for _, e := range n.Content {
			e = resolve(e)
			if e.Kind != yaml.ScalarNode || isNull(e) || strings.Contains(e.Value, ",") {
				return "", false
			}
			parts = append(parts, e.Value)
		}
		return strings.Join(parts, ","), true
	}
	return "", false
}

func nodeText(n *yaml.Node) string {
	switch n.Kind {
	case yaml.ScalarNode:
		return n.Value
	case yaml.MappingNode:
		return "<mapping>"
	case yaml.SequenceNode:
		return "<list>"
	}
	return ""
}
