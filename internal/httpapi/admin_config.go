package httpapi

import (
	"net/http"
	"strings"

	"github.com/yndnr/tokmesh-go/internal/apierr"
	"github.com/yndnr/tokmesh-go/internal/config"
)

// configProblem is one entry of the errors list of validate and reload.
type configProblem struct {
	Code    string `json:"code"`
	Key     string `json:"key"`
	Message string `json:"message"`
}

func problems(errs []*config.Error) []configProblem {
	out := make([]configProblem, 0, len(errs))
	for _, e := range errs {
		// e.Error() is "CODE key: message (value …, expected …)"; drop the
		// parts that have their own fields.
		msg := strings.TrimPrefix(e.Error(), e.Code+" ")
		if e.Key != "" {
			msg = strings.TrimPrefix(msg, e.Key+": ")
		}
		out = append(out, configProblem{Code: e.Code, Key: e.Key, Message: msg})
	}
	return out
}

// GET /admin/v1/config: the effective tree. The configuration holds no key
// material (the master key lives in a file or the environment, never in it).
func (h *Handler) adminConfigGet(rq *request) (int, []byte, *apierr.Error) {
	a := h.admin()
	if a.Config == nil || a.Config() == nil {
		return 0, nil, apierr.Newf(apierr.SysInternal, "the effective configuration is not available")
	}
	return marshalData(map[string]any{"config": a.Config().Tree()})
}

// POST /admin/v1/config/validate: defaults + the given YAML alone (this
// server's env and flags are ignored). Audited as admin.read: it changes
// nothing.
func (h *Handler) adminConfigValidate(rq *request) (int, []byte, *apierr.Error) {
	var doc string
	if aerr := adminBody(rq, field{name: "config_yaml", dst: &doc, required: true}); aerr != nil {
		return 0, nil, aerr
	}
	_, errs := config.FromYAML([]byte(doc))
	return marshalData(map[string]any{"valid": len(errs) == 0, "errors": problems(errs)})
}

// configErrors collects the *config.Error values in err's tree.
func configErrors(err error) []*config.Error {
	var out []*config.Error
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		if ce, ok := e.(*config.Error); ok {
			out = append(out, ce)
			return
		}
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(x)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return out
}

// POST /admin/v1/config/reload
func (h *Handler) adminConfigReload(w http.ResponseWriter, rq *request) {
	a := h.admin()
	res := a.ConfigFile
	if aerr := adminBody(rq); aerr != nil {
		h.adminReject(w, rq, actionConfigReload, res, aerr)
		return
	}
	if a.Reload == nil {
		h.adminReject(w, rq, actionConfigReload, res, apierr.Newf(apierr.SysInternal, "configuration reload is not available"))
		return
	}
	h.adminWrite(w, rq, actionConfigReload, res, nil, func(out *auditOut) (int, []byte, *apierr.Error) {
		applied, restart, err := a.Reload()
		if err != nil {
			errs := configErrors(err)
			if len(errs) == 0 {
				return 0, nil, &apierr.Error{Code: apierr.SysInternal, Message: "configuration reload failed", Err: err}
			}
			codes := make([]string, len(errs))
			for i, e := range errs {
				codes[i] = e.Code
			}
			out.set("error", codes)
			return 0, nil, apierr.Newf(apierr.Code(errs[0].Code), "configuration is invalid; nothing was applied").
				WithDetail("errors", problems(errs))
		}
		if applied == nil {
			applied = []string{}
		}
		if restart == nil {
			restart = []string{}
		}
		out.set("applied", applied)
		out.set("restart_required", restart)
		_, b, aerr := marshalData(map[string]any{"applied": applied, "restart_required": restart})
		return http.StatusOK, b, aerr
	})
}
