// Package logging builds TokMesh's structured logger: log/slog JSON lines
// whose every record passes a redacting handler (04-security §10,
// 09-observability §2).
//
// Invariant: no record reaches the output with a server token (`tmtk_…`) or
// an API-key secret (`tmas_…`) in its message, attribute keys or string
// values, and attributes named token, secret, api_key, authorization,
// x-api-key or password never show their value. Redaction is a safety net,
// not a licence: tokens a client chose itself cannot be recognized by
// pattern, so callers must still never hand tokens, secrets, request bodies
// or session data to a logger.
package logging

import (
	"context"
	"io"
	"log/slog"
	"time"
)

// New returns the process logger: JSON lines on w (time in RFC 3339 with
// milliseconds, UTC) at the given level, behind the redactor. Pass a
// *slog.LevelVar to change the level at run time.
func New(w io.Writer, level slog.Leveler) *slog.Logger {
	inner := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: utcMillis})
	return slog.New(NewRedactingHandler(inner))
}

// utcMillis renders the record time as RFC 3339 with exactly three
// fractional digits in UTC; slog's JSON handler would use local time and
// nanoseconds.
func utcMillis(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey && a.Value.Kind() == slog.KindTime {
		var buf [32]byte
		b := a.Value.Time().UTC().AppendFormat(buf[:0], "2006-01-02T15:04:05.000Z07:00")
		return slog.String(slog.TimeKey, string(b))
	}
	return a
}

// NewRedactingHandler wraps inner so that every record's message, attribute
// keys and string values — inside groups, in slog.Any values (strings,
// []byte, errors' Error() text, fmt.Stringer values, and the JSON rendering
// of any other value), in LogValuer results and in attributes added through
// WithAttrs — have `tmtk_…` and `tmas_…` replaced, and attributes whose key
// is a credential name get the value ***REDACTED***.
//
// A record with nothing to redact is passed to inner unchanged and costs
// no allocation unless it carries slog.Any values of non-string types, which
// have to be rendered to be checked.
func NewRedactingHandler(inner slog.Handler) slog.Handler {
	if h, ok := inner.(*redactingHandler); ok {
		return h
	}
	return &redactingHandler{inner: inner}
}

type redactingHandler struct {
	inner slog.Handler
	// sensitive is set once a WithGroup name is a credential key: every
	// value inside that group is replaced.
	sensitive bool
}

func (h *redactingHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h *redactingHandler) Handle(ctx context.Context, r slog.Record) error {
	changed := containsSecret(r.Message)
	if !changed {
		r.Attrs(func(a slog.Attr) bool {
			if h.sensitive || attrNeedsRedaction(a) {
				changed = true
				return false
			}
			return true
		})
	}
	if !changed {
		return h.inner.Handle(ctx, r)
	}
	nr := slog.NewRecord(r.Time, r.Level, RedactString(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		nr.AddAttrs(h.redact(a))
		return true
	})
	return h.inner.Handle(ctx, nr)
}

func (h *redactingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	out := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		out[i] = h.redact(a)
	}
	return &redactingHandler{inner: h.inner.WithAttrs(out), sensitive: h.sensitive}
}

func (h *redactingHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &redactingHandler{inner: h.inner.WithGroup(RedactString(name)), sensitive: h.sensitive || isSensitiveKey(name)}
}

// redact returns a with the redaction rules applied (as a top-level
// attribute of this handler, which may sit inside a sensitive group).
func (h *redactingHandler) redact(a slog.Attr) slog.Attr {
	if h.sensitive {
		if a.Value.Kind() == slog.KindGroup {
			return slog.Attr{Key: RedactString(a.Key), Value: redactGroupValues(a.Value.Group())}
		}
		return slog.String(RedactString(a.Key), Redacted)
	}
	return redactAttr(a)
}

// redactGroupValues replaces every leaf value in a group.
func redactGroupValues(as []slog.Attr) slog.Value {
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		if a.Value.Kind() == slog.KindGroup {
			out[i] = slog.Attr{Key: RedactString(a.Key), Value: redactGroupValues(a.Value.Group())}
		} else {
			out[i] = slog.String(RedactString(a.Key), Redacted)
		}
	}
	return slog.GroupValue(out...)
}

// attrNeedsRedaction reports whether redactAttr would change a. For
// strings, numbers, times and groups of them it does not allocate.
func attrNeedsRedaction(a slog.Attr) bool {
	if isSensitiveKey(a.Key) || containsSecret(a.Key) {
		return true
	}
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return containsSecret(v.String())
	case slog.KindGroup:
		for _, g := range v.Group() {
			if attrNeedsRedaction(g) {
				return true
			}
		}
		return false
	case slog.KindAny:
		_, changed := anyText(v.Any())
		return changed
	}
	return false
}

// redactAttr applies the rules to one attribute, recursively.
func redactAttr(a slog.Attr) slog.Attr {
	key := RedactString(a.Key)
	if isSensitiveKey(a.Key) {
		return slog.String(key, Redacted)
	}
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(key, RedactString(v.String()))
	case slog.KindGroup:
		g := v.Group()
		out := make([]slog.Attr, len(g))
		for i, ga := range g {
			out[i] = redactAttr(ga)
		}
		return slog.Attr{Key: key, Value: slog.GroupValue(out...)}
	case slog.KindAny:
		if text, changed := anyText(v.Any()); changed {
			return slog.String(key, text)
		}
	}
	return slog.Attr{Key: key, Value: v}
}

// anyText checks an arbitrary value. When it holds a secret it returns the
// redacted text that replaces it and true. A value whose Error, String or
// MarshalJSON panics (a nil pointer, typically) is left to the inner
// handler, which reports such values itself.
func anyText(x any) (text string, changed bool) {
	defer func() {
		if recover() != nil {
			text, changed = "", false
		}
	}()
	switch t := x.(type) {
	case nil:
		return "", false
	case string:
		return RedactString(t), containsSecret(t)
	case []byte:
		s := string(t)
		return RedactString(s), containsSecret(s)
	case time.Time, time.Duration:
		return "", false
	}
	// Check every text a handler might print: Error() or String(), and the
	// JSON rendering that slog's JSON handler uses for non-errors.
	if err, ok := x.(error); ok {
		if s := err.Error(); containsSecret(s) {
			return RedactString(s), true
		}
		if _, jm := x.(interface{ MarshalJSON() ([]byte, error) }); !jm {
			return "", false
		}
	}
	if st, ok := x.(interface{ String() string }); ok {
		if s := st.String(); containsSecret(s) {
			return RedactString(s), true
		}
	}
	if s := renderAny(x); containsSecret(s) {
		return RedactString(s), true
	}
	return "", false
}
