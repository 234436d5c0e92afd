package httpapi

import (
	"time"

	"github.com/yndnr/tokmesh-go/internal/auth"
	"github.com/yndnr/tokmesh-go/internal/config"
	"github.com/yndnr/tokmesh-go/internal/engine"
)

// Admin holds what the admin API (02-http-api §5) needs.
type Admin struct {
	Keys      *auth.Manager
	Engine    func() *engine.Engine // nil until recovery completed
	Config    func() *config.Config
	Reload    func() (applied, restartRequired []string, err error)
	NodeID    string
	StartedAt time.Time
}

// registerAdmin registers the /admin/v1 routes.
func (h *Handler) registerAdmin() {}
