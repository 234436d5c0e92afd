package httpapi

import (
	"reflect"
	"testing"

	"github.com/yndnr/tokmesh-go/internal/apierr"
)

// fastFieldSets are the field sets the differential fuzz test runs: the
// validate body, a mixed set with presence flags, one with an int64, and
// the create-session body (int64s and a string map).
type fastDst struct {
	Token, UserID, Device string
	Touch, Flag           bool
	TTL, Idle             int64
	TokenSet, FlagSet     bool
	TTLSet, IdleSet       bool
	Data                  map[string]string
}

func fastFieldSets(d *fastDst) [][]field {
	return [][]field{
		{{name: "token", dst: &d.Token, required: true}, {name: "touch", dst: &d.Touch}},
		{{name: "user_id", dst: &d.UserID, required: true}, {name: "device_id", dst: &d.Device},
			{name: "token", dst: &d.Token, set: &d.TokenSet}, {name: "flag", dst: &d.Flag, set: &d.FlagSet}},
		{{name: "token", dst: &d.Token}, {name: "ttl_seconds", dst: &d.TTL}},
		{{name: "user_id", dst: &d.UserID, required: true}, {name: "device_id", dst: &d.Device},
			{name: "ttl_seconds", dst: &d.TTL, set: &d.TTLSet}, {name: "data", dst: &d.Data},
			{name: "token", dst: &d.Token, set: &d.TokenSet}, {name: "idle_timeout_seconds", dst: &d.Idle, set: &d.IdleSet}},
	}
}

var fastSeeds = []string{``, ` `, `{}`, ` {} `, `{"token":"tmtk_abc"}`, `{"token":"tmtk_abc","touch":true}`,
	`{"token":"a","touch":false}`, `{"touch":true,"token":"a"}`, `{"token":null}`, `{"token":"a","touch":null}`,
	`{"token":"a","token":"b"}`, `{"token":null,"token":"b"}`, `{"Token":"a"}`, `{"token":"a","x":1}`,
	`{"token":"a"} x`, `{"token":"a"}{}`, `{"token":"a",}`, `{"token":1}`, `{"token":"a","touch":"true"}`,
	`{"token":"a","touch":truex}`, `{"token":"a\u0041"}`, `{"token":"a\"b"}`, "{\"token\":\"\xff\"}",
	"{\"token\":\"a\x01\"}", "\v{\"token\":\"a\"}", "{\"token\":\"a\"}\v", "\t{\r\n\"token\" : \"a\" }\n",
	`{"user_id":"u","device_id":"d","token":"t","flag":true}`, `{"user_id":"u","flag":null}`, `{"user_id":"é"}`,
	`{"token":"a","ttl_seconds":5}`, `[]`, `"x"`, `{"token":"a"`, `{"token":"a",`, `{"token"`, `{"token":`,
	`{"token":"a","touch":false,"touch":true}`, `{"token":"a","touch":fals}`, `{"token":"a","touch":nul}`,
	`{"token":"a","ttl_seconds":-0}`, `{"token":"a","ttl_seconds":007}`, `{"token":"a","ttl_seconds":1.5}`,
	`{"token":"a","ttl_seconds":1e3}`, `{"token":"a","ttl_seconds":-}`, `{"token":"a","ttl_seconds":"5"}`,
	`{"token":"a","ttl_seconds":999999999999999999}`, `{"token":"a","ttl_seconds":9223372036854775808}`,
	`{"token":"a","ttl_seconds":12x}`, `{"user_id":"u","data":{}}`, `{"user_id":"u","data":{ }}`,
	`{"user_id":"u","data":{"a":"1","b":"2"},"ttl_seconds":3600,"idle_timeout_seconds":0}`,
	`{"user_id":"u","data":{"a":"1","a":"2"}}`, `{"user_id":"u","data":{"a":1}}`, `{"user_id":"u","data":{"a":"1",}}`,
	`{"user_id":"u","data":{"a":"1"`, `{"user_id":"u","data":[]}`, `{"user_id":"u","data":null}`,
	`{"user_id":"u","data":{"a":"\u00e9"}}`, `{"user_id":"u","data":{"a":null}}`, `{"user_id":"u","data":{"a" : "b" , "c":"d" }}`,
	`{"user_id":"u","data":{"k1":"v","k2":"v","k3":"v","k4":"v","k5":"v","k6":"v","k7":"v","k8":"v","k9":"v","k10":"v","k11":"v","k12":"v","k13":"v","k14":"v","k15":"v","k16":"v","k17":"v"}}`}

// TestDecodeFast_SeedsMatchGeneral runs the differential check over the
// seeds without fuzzing, so it runs in every go test.
func TestDecodeFast_SeedsMatchGeneral(t *testing.T) {
	for _, s := range fastSeeds {
		checkFastEquivalence(t, []byte(s))
	}
	var d fastDst
	if !decodeFast([]byte(`{"token":"tmtk_abc","touch":true}`), fastFieldSets(&d)[0]) || d.Token != "tmtk_abc" || !d.Touch {
		t.Fatalf("fast path declined the validate body: %+v", d)
	}
	var c fastDst
	body := `{"user_id":"u-1001","ttl_seconds":3600,"data":{"tenant":"acme","mfa":"totp"},"idle_timeout_seconds":-0}`
	if !decodeFast([]byte(body), fastFieldSets(&c)[3]) || c.TTL != 3600 || !c.TTLSet || !c.IdleSet ||
		!reflect.DeepEqual(c.Data, map[string]string{"tenant": "acme", "mfa": "totp"}) {
		t.Fatalf("fast path declined or misread the create body: %+v", c)
	}
}

// FuzzDecodeStrictFastPath is the differential fuzz test of the fast path:
// for every body and field set, decodeStrict (fast path first) must give
// the same error (code, message, details) and the same decoded values and
// presence flags as the general decoder alone; when the fast path declines
// it must leave the destinations untouched.
func FuzzDecodeStrictFastPath(f *testing.F) {
	for _, s := range fastSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkFastEquivalence(t, body) })
}

func checkFastEquivalence(t *testing.T, body []byte) {
	t.Helper()
	for k := range fastFieldSets(&fastDst{}) {
		var fast, gen, untouched fastDst
		fastOK := decodeFast(body, fastFieldSets(&fast)[k])
		if !fastOK && !reflect.DeepEqual(fast, untouched) {
			t.Fatalf("set %d, %q: declined fast path wrote %+v", k, body, fast)
		}
		var strict fastDst
		serr := decodeStrict(body, fastFieldSets(&strict)[k]...)
		gerr := decodeGeneral(body, fastFieldSets(&gen)[k])
		if fastOK && gerr != nil {
			t.Fatalf("set %d, %q: fast path accepted, general decoder says %v", k, body, gerr)
		}
		if !reflect.DeepEqual(serr, gerr) {
			t.Fatalf("set %d, %q: decodeStrict %#v, general %#v", k, body, serr, gerr)
		}
		if gerr == nil && !reflect.DeepEqual(strict, gen) {
			t.Fatalf("set %d, %q: decodeStrict decoded %+v, general %+v", k, body, strict, gen)
		}
		if fastOK && !reflect.DeepEqual(fast, gen) {
			t.Fatalf("set %d, %q: fast path decoded %+v, general %+v", k, body, fast, gen)
		}
	}
}

// FuzzDecodeValidate: whatever the validate fast path accepts, decodeStrict
// accepts with the same token and touch.
func FuzzDecodeValidate(f *testing.F) {
	for _, s := range []string{`{"token":"tmtk_abc"}`, `{"touch":true,"token":"t"}`, ` { "token" : "t" , "touch" : false } `,
		`{"token":"t","token":"u"}`, `{"token":"t","touch":null}`, `{"token":null}`, `{"token":"a\"b"}`, `{"token":"t",}`,
		`{}`, `{"token":"t"} x`, `{"token":"t","touch":1}`, `{"token":"t","x":1}`, "{\"token\":\"\xff\"}", `{"token":""}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		tok, touch, ok := decodeValidate(body)
		var wantTok string
		var wantTouch bool
		aerr := decodeStrict(body, field{name: "token", dst: &wantTok, required: true}, field{name: "touch", dst: &wantTouch})
		if !ok {
			return
		}
		if aerr != nil {
			t.Fatalf("fast path accepted %q, decodeStrict refused it: %s", body, aerr.Code)
		}
		if string(tok) != wantTok || touch != wantTouch {
			t.Fatalf("%q: fast path (%q, %v), decodeStrict (%q, %v)", body, tok, touch, wantTok, wantTouch)
		}
	})
}

// A \u escape of half a surrogate pair is refused (encoding/json would
// store U+FFFD, which the client never sent); pairs and escaped
// backslashes followed by "u" are fine.
func TestDecodeStrict_LoneSurrogateEscapes(t *testing.T) {
	for body, lone := range map[string]bool{
		`{"user_id":"a\ud800"}`:                 true,
		`{"user_id":"a\udc00b"}`:                true,
		`{"user_id":"\ud800\u0041"}`:            true,
		`{"user_id":"\ud800\\udc00"}`:           true, // the second is an escaped backslash, not an escape
		`{"user_id":"x","data":{"k":"\uDBFF"}}`: true,
		`{"user_id":"x","data":{"\ud800":"v"}}`: true,
		`{"user_id":"a\ud83d\ude00"}`:           false,
		`{"user_id":"a\uD83D\uDE00"}`:           false,
		`{"user_id":"a\\ud800"}`:                false,
		`{"user_id":"a\u00e9\"\\\/\n"}`:         false,
		`{"user_id":"x","data":{"k":"\u0041"}}`: false,
	} {
		var user string
		var data map[string]string
		err := decodeStrict([]byte(body), field{name: "user_id", dst: &user}, field{name: "data", dst: &data})
		if lone {
			if err == nil || err.Code != apierr.SysMalformed || err.Details["field"] == nil {
				t.Errorf("%s: %v", body, err)
			}
		} else if err != nil {
			t.Errorf("%s: %v", body, err)
		}
	}
}
