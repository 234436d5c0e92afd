package cli

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"go.yaml.in/yaml/v3"
)

func tlsConfig(p targetProfile) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if p.CAFile != "" {
		pem, err := os.ReadFile(p.CAFile)
		if err != nil {
			return nil, configErr(CodeConfig, "fix ca_file in the profile", "cannot read ca_file: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, configErr(CodeConfig, "ca_file must hold PEM certificates", "no certificate in ca_file %s", p.CAFile)
		}
		tc.RootCAs = pool
	}
	if p.CertFile != "" || p.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(p.CertFile, p.KeyFile)
		if err != nil {
			return nil, configErr(CodeConfig, "fix cert_file/key_file in the profile", "cannot load client certificate: %v", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

func writeJSON(w io.Writer, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		fmt.Fprintf(w, "{\"error\":%q}\n", err.Error())
		return
	}
	w.Write(append(b, '\n'))
}

func compactJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// toGeneric round-trips v through JSON so YAML uses the JSON field names.
// Numbers keep their JSON text (UseNumber) and become int64 when they are
// integers, so Unix-ms times and byte counts print as 1795752414203, not
// as the float 1.795752414203e+12.
func toGeneric(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var g any
	_ = dec.Decode(&g)
	return fromNumbers(g)
}

// fromNumbers replaces json.Number in a decoded tree by int64, uint64 or
// float64 (in that order of preference).
func fromNumbers(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			t[k] = fromNumbers(x)
		}
	case []any:
		for i, x := range t {
			t[i] = fromNumbers(x)
		}
	case json.Number:
		if n, err := strconv.ParseInt(string(t), 10, 64); err == nil {
			return n
		}
		if n, err := strconv.ParseUint(string(t), 10, 64); err == nil {
			return n
		}
		if f, err := t.Float64(); err == nil {
			return f
		}
		return string(t)
	}
	return v
}

// scalar renders a value of a decoded JSON tree for a table cell: numbers
// without exponent (float64 holds integers up to 2^53 exactly).
func scalar(v any) string {
	switch t := v.(type) {
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64)
	case json.Number:
		return t.String()
	}
	return fmt.Sprint(v)
}

// emit prints v as json/yaml, or calls table for table/wide.
func (a *app) emit(v any, table func(w *tabwriter.Writer, wide bool)) error {
	switch a.s.output {
	case "json":
		writeJSON(a.env.Stdout, v)
	case "yaml":
		b, err := yaml.Marshal(toGeneric(v))
		if err != nil {
			return dataErr("encode yaml: %v", err)
		}
		a.env.Stdout.Write(b)
	default:
		// Align first, colour after (see paint), so escape sequences never
		// count as column width.
		var buf bytes.Buffer
		tw := tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
		table(tw, a.s.output == "wide")
		tw.Flush()
		io.WriteString(a.env.Stdout, a.paint(buf.String()))
	}
	return nil
}

// header writes a table header unless --quiet.
func (a *app) header(w io.Writer, cols ...string) {
	if a.s.quiet {
		return
	}
	a.headers = append(a.headers, strings.Join(strings.Fields(strings.Join(cols, " ")), " "))
	fmt.Fprintln(w, strings.Join(cols, "\t"))
}

func row(w io.Writer, cols ...string) { fmt.Fprintln(w, strings.Join(cols, "\t")) }

// kv writes FIELD VALUE rows for a single object.
func (a *app) kv(w io.Writer, pairs ...string) {
	a.header(w, "FIELD", "VALUE")
	for i := 0; i+1 < len(pairs); i += 2 {
		row(w, pairs[i], pairs[i+1])
	}
}

func (a *app) footer(w io.Writer, n int) {
	if !a.s.quiet {
		fmt.Fprintf(w, "Total: %d\n", n)
	}
}

// ts renders Unix ms as local time; 0 as "-".
func ts(ms int64) string {
	if ms == 0 {
		return "-"
	}
	return time.UnixMilli(ms).Local().Format("2006-01-02 15:04:05")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// parseTime accepts RFC 3339 or a duration meaning "that long ago" (Go
// syntax such as 15m or 1h30m, or whole days such as 7d); it returns Unix
// ms.
func parseTime(flag, v string, now time.Time) (int64, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.UnixMilli(), nil
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return now.Add(-d).UnixMilli(), nil
	}
	if days, ok := strings.CutSuffix(v, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 && n <= 36500 {
			return now.AddDate(0, 0, -n).UnixMilli(), nil
		}
	}
	return 0, usageErr("invalid --%s %q (want RFC 3339 or a duration ago such as 15m, 2h or 7d)", flag, v)
}

// parseFutureTime accepts RFC 3339 (for --expires-at).
func parseFutureTime(flag, v string) (int64, error) {
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return 0, usageErr("invalid --%s %q (want RFC 3339, e.g. 2027-01-01T00:00:00Z)", flag, v)
	}
	return t.UnixMilli(), nil
}

func positiveSeconds(flag, v string) (int64, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d < time.Second {
		return 0, usageErr("invalid --%s %q (want a duration of at least 1s, e.g. 2h)", flag, v)
	}
	return int64(d / time.Second), nil
}
