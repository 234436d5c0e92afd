package logging

import (
	"context"
	"log/slog"
	"sync/atomic"
)

// Attribute keys every record of a node carries (09-observability §2).
const (
	ComponentKey = "component"
	NodeIDKey    = "node_id"
)

// NodeID is the node ID a node's logger stamps on its records. It is
// unknown ("") until the data dir is read — a fresh data dir gets its ID
// during recovery — and set once known; every logger derived from the
// node's logger, before or after, picks the new value up.
type NodeID struct{ p atomic.Pointer[string] }

// Set records the node ID.
func (n *NodeID) Set(id string) { n.p.Store(&id) }

// Get returns the node ID, "" while it is unknown.
func (n *NodeID) Get() string {
	if p := n.p.Load(); p != nil {
		return *p
	}
	return ""
}

// WithNode returns a logger whose every record carries node_id (the value
// of the returned NodeID when the record is logged) and component — the
// one the logger (With) or the record names, else defaultComponent —
// together with the NodeID to set. Records that name node_id themselves
// keep theirs. The two attributes follow the record's own, so the lines of
// existing records keep their shape.
//
// Once a group is opened (WithGroup) later attributes belong to it, so the
// group's logger carries the component and the node ID known at that
// moment as fixed attributes instead.
func WithNode(l *slog.Logger, defaultComponent string) (*slog.Logger, *NodeID) {
	id := &NodeID{}
	return slog.New(&nodeHandler{inner: l.Handler(), id: id, component: defaultComponent}), id
}

type nodeHandler struct {
	inner     slog.Handler
	id        *NodeID
	component string // added to records without one; "" once the logger names one
	hasNodeID bool   // the logger's attributes include node_id
}

func (h *nodeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h *nodeHandler) Handle(ctx context.Context, r slog.Record) error {
	addComp, addID := h.component != "", !h.hasNodeID
	if addComp || addID {
		r.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case ComponentKey:
				addComp = false
			case NodeIDKey:
				addID = false
			}
			return addComp || addID
		})
	}
	if !addComp && !addID {
		return h.inner.Handle(ctx, r)
	}
	r = r.Clone() // the caller's record is not ours to extend
	if addComp {
		r.AddAttrs(slog.String(ComponentKey, h.component))
	}
	if addID {
		r.AddAttrs(slog.String(NodeIDKey, h.id.Get()))
	}
	return h.inner.Handle(ctx, r)
}

func (h *nodeHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	n := *h
	for _, a := range attrs {
		switch a.Key {
		case ComponentKey:
			n.component = ""
		case NodeIDKey:
			n.hasNodeID = true
		}
	}
	n.inner = h.inner.WithAttrs(attrs)
	return &n
}

func (h *nodeHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	var fixed []slog.Attr
	if h.component != "" {
		fixed = append(fixed, slog.String(ComponentKey, h.component))
	}
	if !h.hasNodeID {
		fixed = append(fixed, slog.String(NodeIDKey, h.id.Get()))
	}
	inner := h.inner
	if len(fixed) > 0 {
		inner = inner.WithAttrs(fixed)
	}
	return &nodeHandler{inner: inner.WithGroup(name), id: h.id, hasNodeID: true}
}

// RedactAttr applies the redaction rules of NewRedactingHandler to one
// attribute, recursively (group members and their keys included), for
// callers that must not depend on the logger they were given being a
// redacting one — the startup dump of the configuration, for one.
func RedactAttr(a slog.Attr) slog.Attr { return redactAttr(a) }
