package engine

import (
	"errors"

	"github.com/yndnr/tokmesh-go/internal/apierr"
	"github.com/yndnr/tokmesh-go/internal/session"
)

// APIError maps an error of the session engine to the catalogue, the same
// way for every protocol (HTTP renders details, RESP the code and message).
func APIError(err error) *apierr.Error {
	var fe *session.FieldError
	var qe *session.QuotaError
	switch {
	case errors.As(err, &fe):
		return apierr.Newf(apierr.SessInvalidField, "%s", fe.Error()).WithDetail("field", fe.Field)
	case errors.As(err, &qe):
		return apierr.New(apierr.SessQuotaExceeded).WithDetail("limit", qe.Limit)
	case errors.Is(err, session.ErrTokenMalformed):
		return apierr.New(apierr.TokenMalformed).WithDetail("field", "token")
	case errors.Is(err, session.ErrTokenConflict):
		return apierr.New(apierr.TokenConflict)
	case errors.Is(err, session.ErrNotFound):
		return apierr.New(apierr.SessNotFound)
	case errors.Is(err, session.ErrExpired):
		return apierr.New(apierr.SessExpired)
	case errors.Is(err, session.ErrRevoked):
		return apierr.New(apierr.SessRevoked)
	case errors.Is(err, ErrStorage):
		return &apierr.Error{Code: apierr.SysStorage, Err: err}
	case errors.Is(err, ErrClosed):
		return &apierr.Error{Code: apierr.SysNotReady, Err: err}
	}
	return &apierr.Error{Code: apierr.SysInternal, Err: err}
}
