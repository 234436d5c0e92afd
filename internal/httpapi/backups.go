package httpapi

// registerBackupRoutes registers the backup and restore routes.
func (h *Handler) registerBackupRoutes() {}
