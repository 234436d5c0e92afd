package httpapi

// registerMetrics registers GET /metrics when a metrics handler is configured.
func (h *Handler) registerMetrics() {}
