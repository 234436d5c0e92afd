package httpapi

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/yndnr/tokmesh-go/internal/apierr"
)

// FuzzDecodeStrict feeds arbitrary bodies to the strict decoder with the
// create-session field set: it must never panic, must only answer with
// catalogue codes, and whatever it accepts must be one valid JSON object.
func FuzzDecodeStrict(f *testing.F) {
	for _, s := range []string{``, `{}`, `{"user_id":"u"}`, `{"user_id":"u","data":{"a":"b"}}`, `{"user_id":"u","User_ID":"x"}`,
		`{"user_id":"u","user_id":"v"}`, `{"user_id":"u"} {}`, `[1]`, `{"user_id":5}`, `{"user_id":null}`,
		`{"data":{"a":"1","a":"2"}}`, `{"ttl_seconds":1e3,"user_id":"u"}`, "{\"user_id\":\"\xff\"}", `{"user_id":"u","data":{"k":1}}`,
		`{"user_id":"u",`, `{"token":"tmtk_x","idle_timeout_seconds":-1,"device_id":"d","user_id":"u"}`,
		`{"user_id":"a\ud800"}`, `{"user_id":"\ud83d\ude00","data":{"k":"\udc00"}}`, `{"user_id":"\\ud800"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var (
			userID, deviceID, token string
			ttl, idle               int64
			data                    map[string]string
		)
		aerr := decodeStrict(body,
			field{name: "user_id", dst: &userID, required: true},
			field{name: "device_id", dst: &deviceID},
			field{name: "ttl_seconds", dst: &ttl},
			field{name: "data", dst: &data},
			field{name: "token", dst: &token},
			field{name: "idle_timeout_seconds", dst: &idle},
		)
		if aerr != nil {
			if aerr.Code != apierr.SysMalformed && aerr.Code != apierr.ArgMissing {
				t.Fatalf("unexpected code %s for %q", aerr.Code, body)
			}
			return
		}
		if len(bytes.TrimSpace(body)) > 0 && !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		// No value the client did not send: a U+FFFD in a decoded string
		// must have been in the body, as such or escaped.
		sent := bytes.Contains(body, []byte("\uFFFD")) || bytes.Contains(bytes.ToLower(body), []byte(`\ufffd`))
		for _, v := range []string{userID, deviceID, token} {
			if strings.ContainsRune(v, utf8.RuneError) && !sent {
				t.Fatalf("decoded %q from %q", v, body)
			}
		}
		for k, v := range data {
			if strings.ContainsRune(k+v, utf8.RuneError) && !sent {
				t.Fatalf("decoded data %q:%q from %q", k, v, body)
			}
		}
	})
}
