package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// TimeFormat is the format of started_at / finished_at: RFC 3339, UTC,
// milliseconds (07-tools §2).
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// OpReport is the result of one operation type: the top-level
// measurement fields, per operation.
type OpReport struct {
	Requests      int64            `json:"requests"`
	Errors        map[string]int64 `json:"errors"`
	ThroughputRPS float64          `json:"throughput_rps"`
	LatencyMS     Latency          `json:"latency_ms"`
}

// Visibility is the revocation-visibility table of revoke-storm: the time
// from a revocation's acknowledgement to the first validation that saw the
// token revoked, in milliseconds (0 when a validator saw it before the
// acknowledgement reached the revoker).
type Visibility struct {
	Count int64 `json:"count"`
	Latency
}

// Measurement holds what one run against one target measured; the report
// carries it flattened for TokMesh and under "redis" for Redis.
type Measurement struct {
	Requests      int64               `json:"requests"`
	Errors        map[string]int64    `json:"errors"`
	ThroughputRPS float64             `json:"throughput_rps"`
	LatencyMS     Latency             `json:"latency_ms"`
	Operations    map[string]OpReport `json:"operations"`
	// StaleValidAfterAck (revoke-storm) counts validations sent after a
	// revocation was acknowledged that still found the token valid.
	StaleValidAfterAck *int64 `json:"stale_valid_after_ack,omitempty"`
	// RevocationVisibility (revoke-storm) is the visibility table.
	RevocationVisibility *Visibility `json:"revocation_visibility_ms,omitempty"`
}

// ErrorCount is the sum of Errors.
func (m *Measurement) ErrorCount() int64 {
	var n int64
	for _, v := range m.Errors {
		n += v
	}
	return n
}

// RedisReport is the --target-redis side of a report.
type RedisReport struct {
	Target     string  `json:"target"`
	DurationS  float64 `json:"duration_s"`
	StartedAt  string  `json:"started_at"`
	FinishedAt string  `json:"finished_at"`
	Measurement
}

// Ratio is TokMesh divided by Redis: throughput (higher is better for
// TokMesh) and p99 latency (lower is better).
type Ratio struct {
	Throughput float64 `json:"throughput"`
	P99        float64 `json:"p99"`
}

// Report is the JSON report of 07-tools §2.
type Report struct {
	Version     string  `json:"version"`
	Scenario    string  `json:"scenario"`
	Protocol    string  `json:"protocol"`
	Target      string  `json:"target"`
	Concurrency int     `json:"concurrency"`
	Rate        float64 `json:"rate"`
	DurationS   float64 `json:"duration_s"`
	StartedAt   string  `json:"started_at"`
	FinishedAt  string  `json:"finished_at"`
	Measurement
	Redis *RedisReport `json:"redis,omitempty"`
	Ratio *Ratio       `json:"ratio,omitempty"`
}

// ratioOf computes TokMesh/Redis; a zero denominator gives 0.
func ratioOf(tm, rd *Measurement) *Ratio {
	r := &Ratio{}
	if rd.ThroughputRPS > 0 {
		r.Throughput = round(tm.ThroughputRPS/rd.ThroughputRPS, 3)
	}
	if rd.LatencyMS.P99 > 0 {
		r.P99 = round(tm.LatencyMS.P99/rd.LatencyMS.P99, 3)
	}
	return r
}

// WriteJSON writes the report, indented, to path (mode 0644).
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// ReadReport reads a report written by WriteJSON.
func ReadReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s is not a tokmesh-bench report: %w", path, err)
	}
	if r.Scenario == "" {
		return nil, fmt.Errorf("%s is not a tokmesh-bench report (no scenario)", path)
	}
	return &r, nil
}

func fmtTime(t time.Time) string { return t.UTC().Format(TimeFormat) }

func sortedOps(m map[string]OpReport) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

func fmtCodes(m map[string]int64) string {
	if len(m) == 0 {
		return "none"
	}
	codes := make([]string, 0, len(m))
	for k := range m {
		codes = append(codes, k)
	}
	sort.Strings(codes)
	parts := make([]string, len(codes))
	for i, c := range codes {
		parts[i] = fmt.Sprintf("%s=%d", c, m[c])
	}
	return strings.Join(parts, " ")
}

func latencyRow(w io.Writer, name string, reqs int64, rps float64, l Latency) {
	r := "-"
	if rps >= 0 {
		r = fmt.Sprintf("%.0f", rps)
	}
	fmt.Fprintf(w, "%s\t%d\t%s\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t\n", name, reqs, r, l.P50, l.P90, l.P99, l.P999, l.Max, l.Mean)
}

func writeMeasurement(w io.Writer, label string, m *Measurement) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%s\trequests\treq/s\tp50\tp90\tp99\tp99.9\tmax\tmean (ms)\t\n", label)
	latencyRow(tw, "total", m.Requests, m.ThroughputRPS, m.LatencyMS)
	for _, op := range sortedOps(m.Operations) {
		o := m.Operations[op]
		latencyRow(tw, op, o.Requests, o.ThroughputRPS, o.LatencyMS)
	}
	if v := m.RevocationVisibility; v != nil {
		latencyRow(tw, "revocation visibility", v.Count, -1, v.Latency)
	}
	tw.Flush()
	fmt.Fprintf(w, "errors: %s\n", fmtCodes(m.Errors))
	if m.StaleValidAfterAck != nil {
		fmt.Fprintf(w, "stale_valid_after_ack: %d\n", *m.StaleValidAfterAck)
	}
}

// WriteText prints the human summary: the same numbers as the JSON.
func (r *Report) WriteText(w io.Writer) {
	mode := "closed loop"
	if r.Rate > 0 {
		mode = fmt.Sprintf("open loop at %.0f req/s", r.Rate)
	}
	fmt.Fprintf(w, "tokmesh-bench %s: scenario %s, protocol %s, target %s, concurrency %d, %s\n",
		r.Version, r.Scenario, r.Protocol, r.Target, r.Concurrency, mode)
	fmt.Fprintf(w, "measured %.2f s (%s .. %s)\n", r.DurationS, r.StartedAt, r.FinishedAt)
	writeMeasurement(w, "tokmesh", &r.Measurement)
	if r.Redis != nil {
		fmt.Fprintf(w, "\nredis %s, measured %.2f s\n", r.Redis.Target, r.Redis.DurationS)
		writeMeasurement(w, "redis", &r.Redis.Measurement)
	}
	if r.Ratio != nil {
		fmt.Fprintf(w, "\nratio tokmesh/redis: throughput %.3fx, p99 %.3fx\n", r.Ratio.Throughput, r.Ratio.P99)
	}
}

// CompareRow is one line of the --compare table.
type CompareRow struct {
	Metric   string
	Previous float64
	Current  float64
	// Ratio is Current/Previous (0 when Previous is 0).
	Ratio float64
}

func compareLatency(prefix string, prev, cur Latency) []CompareRow {
	return []CompareRow{
		{Metric: prefix + "p50_ms", Previous: prev.P50, Current: cur.P50},
		{Metric: prefix + "p90_ms", Previous: prev.P90, Current: cur.P90},
		{Metric: prefix + "p99_ms", Previous: prev.P99, Current: cur.P99},
		{Metric: prefix + "p999_ms", Previous: prev.P999, Current: cur.P999},
		{Metric: prefix + "max_ms", Previous: prev.Max, Current: cur.Max},
		{Metric: prefix + "mean_ms", Previous: prev.Mean, Current: cur.Mean},
	}
}

// Compare lists this run's numbers against an earlier report: totals,
// then every operation present in both, then the Redis side when both
// have one.
func Compare(prev, cur *Report) []CompareRow {
	rows := []CompareRow{
		{Metric: "throughput_rps", Previous: prev.ThroughputRPS, Current: cur.ThroughputRPS},
		{Metric: "requests", Previous: float64(prev.Requests), Current: float64(cur.Requests)},
		{Metric: "errors", Previous: float64(prev.ErrorCount()), Current: float64(cur.ErrorCount())},
	}
	rows = append(rows, compareLatency("", prev.LatencyMS, cur.LatencyMS)...)
	for _, op := range sortedOps(cur.Operations) {
		p, ok := prev.Operations[op]
		if !ok {
			continue
		}
		c := cur.Operations[op]
		rows = append(rows, CompareRow{Metric: op + ".throughput_rps", Previous: p.ThroughputRPS, Current: c.ThroughputRPS})
		rows = append(rows, compareLatency(op+".", p.LatencyMS, c.LatencyMS)...)
	}
	if prev.Redis != nil && cur.Redis != nil {
		rows = append(rows, CompareRow{Metric: "redis.throughput_rps", Previous: prev.Redis.ThroughputRPS, Current: cur.Redis.ThroughputRPS})
		rows = append(rows, compareLatency("redis.", prev.Redis.LatencyMS, cur.Redis.LatencyMS)...)
	}
	for i := range rows {
		if rows[i].Previous != 0 {
			rows[i].Ratio = round(rows[i].Current/rows[i].Previous, 3)
		}
	}
	return rows
}

// WriteCompare prints the --compare table.
func WriteCompare(w io.Writer, prevPath string, prev *Report, rows []CompareRow) {
	fmt.Fprintf(w, "\ncompared with %s (%s %s, %s)\n", prevPath, prev.Scenario, prev.Protocol, prev.StartedAt)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "metric\tprevious\tcurrent\tcurrent/previous\t\n")
	for _, r := range rows {
		ratio := "-"
		if r.Previous != 0 {
			ratio = fmt.Sprintf("%.3fx", r.Ratio)
		}
		fmt.Fprintf(tw, "%s\t%.3f\t%.3f\t%s\t\n", r.Metric, r.Previous, r.Current, ratio)
	}
	tw.Flush()
}
