package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestCreate_ValidatesFields(t *testing.T) {
	e := newEnv(t)
	now := e.clock.Now().UnixMilli()
	many := make([]string, 101)
	for i := range many {
		many[i] = fmt.Sprintf("10.0.0.%d", i)
	}
	for _, tc := range []struct {
		name    string
		req     CreateRequest
		field   string
		missing bool
	}{
		{"role missing", CreateRequest{}, "role", true},
		{"role unknown", CreateRequest{Role: "root"}, "role", false},
		{"description 257 bytes", CreateRequest{Role: RoleAdmin, Description: strings.Repeat("x", 257)}, "description", false},
		{"allowlist 101 entries", CreateRequest{Role: RoleAdmin, AllowList: many}, "allowlist", false},
		{"allowlist entry invalid", CreateRequest{Role: RoleAdmin, AllowList: []string{"10.0.0.0/40"}}, "allowlist", false},
		{"rate limit negative", CreateRequest{Role: RoleAdmin, RateLimit: -1}, "rate_limit", false},
		{"rate limit above 1,000,000", CreateRequest{Role: RoleAdmin, RateLimit: 1_000_001}, "rate_limit", false},
		{"expires_at now", CreateRequest{Role: RoleAdmin, ExpiresAt: now}, "expires_at", false},
		{"expires_at in the past", CreateRequest{Role: RoleAdmin, ExpiresAt: now - 1}, "expires_at", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, _, err := e.mgr.Create(e.ctx, tc.req, LocalAdminID)
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field || fe.Missing != tc.missing {
				t.Fatalf("got %v", err)
			}
		})
	}
	if e.store.View().Len() != 0 {
		t.Fatal("invalid request created a key")
	}
}

func TestCreate_StoresHashOnlyAndWarnsOnLongLife(t *testing.T) {
	e := newEnv(t)
	now := e.clock.Now()
	for _, tc := range []struct {
		name      string
		expiresAt int64
		warning   string
	}{
		{"never expires", 0, WarnNeverExpires},
		{"366 days ahead", now.Add(366 * 24 * time.Hour).UnixMilli(), WarnExpiresFar},
		{"365 days ahead", now.Add(365 * 24 * time.Hour).UnixMilli(), ""},
		{"tomorrow", now.Add(24 * time.Hour).UnixMilli(), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, secret, warning, err := e.mgr.Create(e.ctx, CreateRequest{Role: RoleIssuer, Description: "ci",
				AllowList: []string{"10.1.2.3", "2001:db8::/32", "192.168.7.9/16"}, ExpiresAt: tc.expiresAt}, "tmak-01jh8v9k2c3n4p5q6r7s8t9v0w")
			if err != nil {
				t.Fatal(err)
			}
			if warning != tc.warning {
				t.Fatalf("warning %q", warning)
			}
			if !validSecret(secret) || k.RateLimit != 1000 || k.Status != StatusActive || k.CreatedAt != now.UnixMilli() || k.CreatedBy != "tmak-01jh8v9k2c3n4p5q6r7s8t9v0w" {
				t.Fatalf("key %+v", k)
			}
			if ok, _ := VerifySecret(secret, k.SecretHash); !ok {
				t.Fatal("hash does not verify the returned secret")
			}
			js, _ := json.Marshal(k)
			want := `{"key_id":"` + k.ID + `","role":"issuer","description":"ci","status":"active","allowlist":["10.1.2.3/32","2001:db8::/32","192.168.0.0/16"],"rate_limit":1000,"created_at":` +
				fmt.Sprint(now.UnixMilli()) + `,"created_by":"tmak-01jh8v9k2c3n4p5q6r7s8t9v0w","expires_at":` + fmt.Sprint(tc.expiresAt) + `,"last_used_at":0,"rotation_grace_until":0}`
			if string(js) != want {
				t.Fatalf("json\n%s\nwant\n%s", js, want)
			}
			for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%+v", k), fmt.Sprintf("%#v", k), string(js)} {
				if strings.Contains(s, "argon2") || strings.Contains(s, secret[5:]) {
					t.Fatalf("hash or secret leaked: %s", s)
				}
			}
			var buf bytes.Buffer
			slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "key", k)
			if strings.Contains(buf.String(), "argon2") {
				t.Fatalf("slog leaked the hash: %s", buf.String())
			}
		})
	}
}

func TestCreate_EmptyAllowListSerialisesAsEmptyArray(t *testing.T) {
	e := newEnv(t)
	k, _ := e.create(CreateRequest{})
	js, _ := json.Marshal(k)
	if !strings.Contains(string(js), `"allowlist":[]`) {
		t.Fatal(string(js))
	}
}

func TestGetAndList(t *testing.T) {
	e := newEnv(t)
	var ids []string
	for i := range 25 {
		role := RoleValidator
		if i%5 == 0 {
			role = RoleAdmin
		}
		k, _ := e.create(CreateRequest{Role: role})
		ids = append(ids, k.ID)
		e.clock.Advance(time.Millisecond)
	}
	e.mgr.SetStatus(e.ctx, ids[1], StatusDisabled)
	if k, err := e.mgr.Get(strings.ToUpper(ids[3])); err != nil || k.ID != ids[3] {
		t.Fatalf("Get upper case: %v", err)
	}
	for _, bad := range []string{"tmak-01jh8v9k2c3n4p5q6r7s8t9v0w", "nope"} {
		if _, err := e.mgr.Get(bad); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get(%s): %v", bad, err)
		}
	}
	page, total, err := e.mgr.List("", "", 2, 10)
	if err != nil || total != 25 || len(page) != 10 || page[0].ID != ids[10] {
		t.Fatalf("page 2: %v %d %d", err, total, len(page))
	}
	page, total, _ = e.mgr.List("", "", 3, 10)
	if total != 25 || len(page) != 5 {
		t.Fatalf("last page %d", len(page))
	}
	page, total, _ = e.mgr.List("", "", 4, 10)
	if total != 25 || len(page) != 0 || page == nil {
		t.Fatal("page past the end must be empty, not nil")
	}
	if _, total, _ = e.mgr.List(RoleAdmin, "", 1, 100); total != 5 {
		t.Fatalf("admins %d", total)
	}
	if page, total, _ = e.mgr.List("", StatusDisabled, 1, 20); total != 1 || page[0].ID != ids[1] {
		t.Fatalf("disabled %d", total)
	}
	for _, tc := range []struct {
		role       Role
		status     Status
		page, size int
		field      string
	}{
		{"x", "", 1, 1, "role"}, {"", "x", 1, 1, "status"}, {"", "", 0, 1, "page"},
		{"", "", 1, 0, "size"}, {"", "", 1, 101, "size"}, {"", "", 101, 100, "page"},
	} {
		var fe *FieldError
		if _, _, err := e.mgr.List(tc.role, tc.status, tc.page, tc.size); !errors.As(err, &fe) || fe.Field != tc.field {
			t.Fatalf("%+v: %v", tc, err)
		}
	}
}

func TestSetStatus_WarnsWhenLastActiveAdminIsDisabled(t *testing.T) {
	e := newEnv(t)
	a1, _ := e.create(CreateRequest{Role: RoleAdmin})
	a2, _ := e.create(CreateRequest{Role: RoleAdmin})
	v, _ := e.create(CreateRequest{Role: RoleValidator})
	if _, w, _ := e.mgr.SetStatus(e.ctx, a1.ID, StatusDisabled); w != "" {
		t.Fatalf("warning with another admin left: %q", w)
	}
	if _, w, _ := e.mgr.SetStatus(e.ctx, v.ID, StatusDisabled); w != "" {
		t.Fatalf("warning for a validator: %q", w)
	}
	k, w, err := e.mgr.SetStatus(e.ctx, a2.ID, StatusDisabled)
	if err != nil || w != WarnLastAdminGone || k.Status != StatusDisabled {
		t.Fatalf("last admin: %v %q", err, w)
	}
	idx := e.store.Index()
	if _, _, err := e.mgr.SetStatus(e.ctx, a2.ID, StatusDisabled); err != nil || e.store.Index() != idx {
		t.Fatal("no-op status change was written")
	}
	if _, _, err := e.mgr.SetStatus(e.ctx, "tmak-01jh8v9k2c3n4p5q6r7s8t9v0w", StatusActive); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	var fe *FieldError
	if _, _, err := e.mgr.SetStatus(e.ctx, a2.ID, "paused"); !errors.As(err, &fe) {
		t.Fatal(err)
	}
}

func TestRotate_GraceBoundsAndDefault(t *testing.T) {
	e := newEnv(t)
	k, _ := e.create(CreateRequest{})
	var fe *FieldError
	if _, _, _, err := e.mgr.Rotate(e.ctx, k.ID, 24*time.Hour+time.Second); !errors.As(err, &fe) || fe.Field != "grace_seconds" {
		t.Fatal(err)
	}
	k2, secret, until, err := e.mgr.Rotate(e.ctx, k.ID, -1)
	if err != nil {
		t.Fatal(err)
	}
	if until != e.clock.Now().Add(time.Hour).UnixMilli() || k2.RotationGraceUntil != until || k2.PrevSecretHash != k.SecretHash {
		t.Fatalf("default grace: until %d key %+v", until, k2)
	}
	if ok, _ := VerifySecret(secret, k2.SecretHash); !ok {
		t.Fatal("new hash")
	}
	if _, _, _, err := e.mgr.Rotate(e.ctx, "nope", 0); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
}

func TestEmergency_CreatesAdminKeyFor24Hours(t *testing.T) {
	e := newEnv(t)
	k, secret, warning, err := e.mgr.Emergency(e.ctx, "lost all admin keys")
	if err != nil {
		t.Fatal(err)
	}
	if k.Role != RoleAdmin || k.CreatedBy != LocalAdminID || k.ExpiresAt != e.clock.Now().Add(24*time.Hour).UnixMilli() || warning == "" {
		t.Fatalf("%+v %q", k, warning)
	}
	if p, err := e.auth(k.ID+":"+secret, "127.0.0.1"); err != nil || !p.Can(CapAdmin) {
		t.Fatal(err)
	}
	e.clock.Advance(24*time.Hour + time.Millisecond)
	if _, err := e.auth(k.ID+":"+secret, "127.0.0.1"); !errors.Is(err, ErrBadCredential) {
		t.Fatalf("after 24 h: %v", err)
	}
}

func TestLastUsed_IsWrittenByFlushNotPerRequest(t *testing.T) {
	e := newEnv(t)
	k, cred := e.create(CreateRequest{})
	idx := e.store.Index()
	for range 20 {
		if _, err := e.auth(cred, "127.0.0.1"); err != nil {
			t.Fatal(err)
		}
	}
	if e.store.Index() != idx {
		t.Fatal("a request wrote to the store")
	}
	if err := e.mgr.FlushLastUsed(e.ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := e.mgr.Get(k.ID)
	if got.LastUsedAt != e.clock.Now().UnixMilli() || e.store.Index() != idx+1 {
		t.Fatalf("last_used_at %d index %d", got.LastUsedAt, e.store.Index())
	}
	e.mgr.FlushLastUsed(e.ctx)
	if e.store.Index() != idx+1 {
		t.Fatal("flush without news wrote a command")
	}
}
