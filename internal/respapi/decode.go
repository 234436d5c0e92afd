package respapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"unicode/utf8"

	"github.com/yndnr/tokmesh-go/internal/apierr"
	"github.com/yndnr/tokmesh-go/internal/session"
)

// decodeCreate decodes the TM.CREATE body with the HTTP create rules
// (02-http-api §4.1, httpapi.decodeStrict): one JSON object, exact field
// names, unknown or duplicate fields, wrong types, invalid UTF-8 and
// trailing data → TM-SYS-4000; a missing or null user_id → TM-ARG-1002.
// Not on the hot path.
func decodeCreate(body []byte) (req session.CreateRequest, token string, tokenSet bool, aerr *apierr.Error) {
	if !utf8.Valid(body) {
		return req, "", false, apierr.Newf(apierr.SysMalformed, "request body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return req, "", false, apierr.Newf(apierr.SysMalformed, "request body must be a JSON object")
	}
	seen := map[string]bool{}
	userSet := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return req, "", false, apierr.Newf(apierr.SysMalformed, "invalid JSON")
		}
		name, _ := tok.(string)
		if seen[name] {
			return req, "", false, apierr.Newf(apierr.SysMalformed, "duplicate field %q", name)
		}
		seen[name] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return req, "", false, apierr.Newf(apierr.SysMalformed, "invalid JSON")
		}
		var dst any
		var set *bool
		switch name {
		case "user_id":
			dst, set = &req.UserID, &userSet
		case "device_id":
			dst = &req.DeviceID
		case "ttl_seconds":
			dst, set = &req.TTLSeconds, &req.TTLSet
		case "idle_timeout_seconds":
			dst, set = &req.IdleTimeoutSeconds, &req.IdleSet
		case "token":
			dst, set = &token, &tokenSet
		case "data":
		default:
			return req, "", false, apierr.Newf(apierr.SysMalformed, "unknown field %q", name)
		}
		if string(raw) == "null" {
			continue
		}
		if name == "data" {
			m, err := decodeStringMap(raw)
			if err != nil {
				return req, "", false, apierr.Newf(apierr.SysMalformed, "field %q: %v", name, err)
			}
			req.Data = m
			continue
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			return req, "", false, apierr.Newf(apierr.SysMalformed, "field %q has the wrong type", name)
		}
		if set != nil {
			*set = true
		}
	}
	if _, err := dec.Token(); err != nil {
		return req, "", false, apierr.Newf(apierr.SysMalformed, "invalid JSON")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return req, "", false, apierr.Newf(apierr.SysMalformed, "trailing data after the JSON object")
	}
	if !userSet {
		return req, "", false, apierr.Newf(apierr.ArgMissing, "field %q is required", "user_id")
	}
	return req, token, tokenSet, nil
}

func decodeStringMap(raw []byte) (map[string]string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, errors.New("must be an object of strings")
	}
	m := map[string]string{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k, _ := tok.(string)
		if _, dup := m[k]; dup {
			return nil, errors.New("duplicate key")
		}
		tok, err = dec.Token()
		if err != nil {
			return nil, err
		}
		v, ok := tok.(string)
		if !ok {
			return nil, errors.New("values must be strings")
		}
		m[k] = v
	}
	return m, nil
}
