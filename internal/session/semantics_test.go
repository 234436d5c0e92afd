package session

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// Tests in this file cover 01-data-model §3–§7 rule by rule.

func TestCreate_DefaultsAndGeneratedToken(t *testing.T) {
	e := newEnv(t, nil)
	res := e.create(CreateRequest{UserID: "u-1001", IP: ipA, UserAgent: "Mozilla/5.0", CreatedBy: "LOCAL_ADMIN"})
	s := res.Session
	if len(res.Token) != 48 || !strings.HasPrefix(res.Token, "tmtk_") {
		t.Fatalf("generated token %q", res.Token)
	}
	if s.Version != 1 || s.CreatedAt != t0 || s.LastActive != t0 || s.ExpiresAt != t0+7200*1000 {
		t.Fatalf("bad defaults: %+v", s)
	}
	if s.LastAccessIP != ipA || s.IPAddress != ipA || s.LastAccessUA != "Mozilla/5.0" || s.UserAgent != "Mozilla/5.0" {
		t.Fatal("last access fields must equal the create request's")
	}
	if string(s.Data) != "{}" || s.DeviceID != "" || s.IdleTimeout != 0 || s.CreatedBy != "LOCAL_ADMIN" {
		t.Fatalf("bad optional defaults: %+v", s)
	}
	if s.TokenHash != HashToken(res.Token) {
		t.Fatal("token hash mismatch")
	}
	if got, err := e.st.Get(s.ID); err != nil || got.Version != 1 {
		t.Fatalf("get after create: %v", err)
	}
	if e.j.types(0) != "SESSION_PUT" || res.Seq != 1 {
		t.Fatalf("journal %s seq %d", e.j.types(0), res.Seq)
	}
}

func TestCreate_IDBytes6And7ArePartitionOfTokenHash(t *testing.T) {
	for _, p := range []int{256, 8, 4096} {
		e := newEnv(t, func(c *Config) { c.Partitions = p })
		for i := 0; i < 50; i++ {
			res := e.create(CreateRequest{Token: token(i)})
			th := HashToken(token(i))
			id := res.Session.ID
			if int(id[6])<<8|int(id[7]) != (int(th[0])<<8|int(th[1]))%p {
				t.Fatalf("P=%d: ID partition %d, token partition %d", p, id.Partition(), th.Partition(p))
			}
			if id[8] != th[2] {
				t.Fatal("ID byte 8 is not token hash byte 2")
			}
			if parsed, ok := ParseID(id.String(), p); !ok || parsed != id {
				t.Fatal("created ID does not parse")
			}
		}
	}
}

func TestCreate_TokenFormatRule(t *testing.T) {
	e := newEnv(t, nil)
	_, err := e.st.Create(CreateRequest{UserID: "u", Token: strings.Repeat("x", 15)})
	wantErr(t, err, ErrTokenMalformed)
	_, err = e.st.Create(CreateRequest{UserID: "u", Token: strings.Repeat("x", 16) + " "})
	wantErr(t, err, ErrTokenMalformed)
	if e.j.len() != 0 {
		t.Fatal("rejected create journaled")
	}
	// A 1024-byte JWT-like token works and is never returned.
	jwt := "eyJhbGciOiJIUzI1NiJ9." + strings.Repeat("a", 1024-21-44) + "." + strings.Repeat("s", 43)
	if len(jwt) != 1024 {
		t.Fatalf("jwt is %d bytes", len(jwt))
	}
	res := e.create(CreateRequest{UserID: "u", Token: jwt})
	if res.Token != "" {
		t.Fatal("client token returned")
	}
	if strings.Contains(string(res.Session.AppendJSON(nil)), jwt[:30]) {
		t.Fatal("token in session JSON")
	}
	if _, _, err := e.st.Validate(jwt, false, ipA, ""); err != nil {
		t.Fatal(err)
	}
	_, err = e.st.Create(CreateRequest{UserID: "u", Token: jwt + "x"})
	wantErr(t, err, ErrTokenMalformed)
}

func TestCreate_FieldRules(t *testing.T) {
	cases := []struct {
		name  string
		req   CreateRequest
		field string
	}{
		{"user_id empty", CreateRequest{}, "user_id"},
		{"user_id 129 bytes", CreateRequest{UserID: strings.Repeat("u", 129)}, "user_id"},
		{"user_id control char", CreateRequest{UserID: "u\x00"}, "user_id"},
		{"user_id invalid utf8", CreateRequest{UserID: "u\xff"}, "user_id"},
		{"device_id 129 bytes", CreateRequest{UserID: "u", DeviceID: strings.Repeat("d", 129)}, "device_id"},
		{"device_id control char", CreateRequest{UserID: "u", DeviceID: "d\n"}, "device_id"},
		{"ttl 0", CreateRequest{UserID: "u", TTLSet: true}, "ttl_seconds"},
		{"ttl negative", CreateRequest{UserID: "u", TTLSet: true, TTLSeconds: -5}, "ttl_seconds"},
		{"ttl max+1", CreateRequest{UserID: "u", TTLSet: true, TTLSeconds: 2592001}, "ttl_seconds"},
		{"idle negative", CreateRequest{UserID: "u", IdleSet: true, IdleTimeoutSeconds: -1}, "idle_timeout_seconds"},
		{"idle max+1", CreateRequest{UserID: "u", IdleSet: true, IdleTimeoutSeconds: 2592001}, "idle_timeout_seconds"},
		{"data 4097 bytes", CreateRequest{UserID: "u", Data: dataOfSize(4097)}, "data"},
		{"data value too long", CreateRequest{UserID: "u", Data: map[string]string{"k": strings.Repeat("v", 1025)}}, "data.k"},
		{"created_by too long", CreateRequest{UserID: "u", CreatedBy: strings.Repeat("c", 129)}, "created_by"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, nil)
			_, err := e.st.Create(c.req)
			wantField(t, err, c.field)
			if e.j.len() != 0 || e.st.Stats().Live != 0 {
				t.Fatal("rejected create changed something")
			}
		})
	}
	ok := []CreateRequest{
		{UserID: strings.Repeat("u", 128), DeviceID: strings.Repeat("d", 128)},
		{UserID: "用户", DeviceID: "設備"},
		{UserID: "u", TTLSet: true, TTLSeconds: 2592000},
		{UserID: "u", TTLSet: true, TTLSeconds: 1},
		{UserID: "u", IdleSet: true, IdleTimeoutSeconds: 2592000},
		{UserID: "u", Data: dataOfSize(4096)},
	}
	e := newEnv(t, nil)
	for i, req := range ok {
		if _, err := e.st.Create(req); err != nil {
			t.Errorf("case %d: %v", i, err)
		}
	}
}

func TestCreate_Data4096Accepted4097Rejected(t *testing.T) {
	e := newEnv(t, nil)
	res := e.create(CreateRequest{Data: dataOfSize(4096)})
	if len(res.Session.Data) != 4096 {
		t.Fatalf("data stored as %d bytes", len(res.Session.Data))
	}
	_, err := e.st.Create(CreateRequest{UserID: "u", Data: dataOfSize(4097)})
	wantField(t, err, "data")
}

func TestCreate_UserAgent600BytesStoredAs512(t *testing.T) {
	e := newEnv(t, nil)
	res := e.create(CreateRequest{UserAgent: strings.Repeat("M", 600)})
	if len(res.Session.UserAgent) != 512 || len(res.Session.LastAccessUA) != 512 {
		t.Fatalf("UA stored as %d bytes", len(res.Session.UserAgent))
	}
	got, _ := e.st.Get(res.Session.ID)
	if len(got.UserAgent) != 512 {
		t.Fatal("stored UA not truncated")
	}
	s, _, _ := e.st.Touch(res.Session.ID, ipA, strings.Repeat("N", 700))
	if len(s.LastAccessUA) != 512 {
		t.Fatal("touch UA not truncated")
	}
}

func TestCreate_ConflictWithLiveSessionOrTombstone(t *testing.T) {
	e := newEnv(t, nil)
	res := e.create(CreateRequest{Token: token(1)})
	n := e.j.len()
	_, err := e.st.Create(CreateRequest{UserID: "other", Token: token(1)})
	wantErr(t, err, ErrTokenConflict)
	if _, _, err := e.st.Revoke(res.Session.ID); err != nil {
		t.Fatal(err)
	}
	n = e.j.len()
	_, err = e.st.Create(CreateRequest{UserID: "other", Token: token(1)})
	wantErr(t, err, ErrTokenConflict)
	if e.j.len() != n {
		t.Fatal("conflicting create journaled")
	}
	// Once the tombstone is gone (expires_at + grace), the token is free.
	e.clk.Add(7200*1000 + 10_000 + 1)
	res2 := e.create(CreateRequest{UserID: "other", Token: token(1)})
	if got := e.j.types(n); got != "SESSION_EXPIRE,SESSION_PUT" {
		t.Fatalf("journal %s", got)
	}
	if s, _, err := e.st.Validate(token(1), false, ipA, ""); err != nil || s.ID != res2.Session.ID {
		t.Fatalf("validate after reuse: %v", err)
	}
}

func TestCreate_ExpiredSessionDoesNotConflict(t *testing.T) {
	e := newEnv(t, nil)
	old := e.create(CreateRequest{Token: token(1), TTLSet: true, TTLSeconds: 1})
	e.clk.Add(1500) // expired, within grace
	_, _, err := e.st.Validate(token(1), false, ipA, "")
	wantErr(t, err, ErrExpired)
	n := e.j.len()
	res := e.create(CreateRequest{Token: token(1)})
	if got := e.j.types(n); got != "SESSION_EXPIRE,SESSION_PUT" {
		t.Fatalf("journal %s", got)
	}
	if s, _, err := e.st.Validate(token(1), false, ipA, ""); err != nil || s.ID != res.Session.ID {
		t.Fatalf("validate: %v", err)
	}
	_, err = e.st.Get(old.Session.ID)
	wantErr(t, err, ErrNotFound)
}

func TestGet_HasNoSideEffects(t *testing.T) {
	e := newEnv(t, nil)
	res := e.create(CreateRequest{})
	n := e.j.len()
	e.clk.Add(5000)
	a, err1 := e.st.Get(res.Session.ID)
	e.clk.Add(5000)
	b, err2 := e.st.Get(res.Session.ID)
	if err1 != nil || err2 != nil || a.LastActive != t0 || b.LastActive != t0 || a.Version != 1 || b.Version != 1 {
		t.Fatalf("GET changed the session: %+v %+v", a, b)
	}
	if e.j.len() != n {
		t.Fatal("GET journaled")
	}
	_, err := e.st.Get(ID{})
	wantErr(t, err, ErrNotFound)
}

func TestTouch_MovesLastActiveBumpsVersionKeepsExpiry(t *testing.T) {
	e := newEnv(t, nil)
	res := e.create(CreateRequest{IP: ipA, UserAgent: "ua1"})
	e.clk.Add(3000)
	s, seq, err := e.st.Touch(res.Session.ID, ipB, "ua2")
	if err != nil {
		t.Fatal(err)
	}
	if s.LastActive != t0+3000 || s.Version != 2 || s.ExpiresAt != res.Session.ExpiresAt {
		t.Fatalf("touch: %+v", s)
	}
	if s.LastAccessIP != ipB || s.LastAccessUA != "ua2" || s.IPAddress != ipA || s.UserAgent != "ua1" {
		t.Fatal("touch must change only the last access fields")
	}
	if seq == 0 || e.j.types(1) != "SESSION_TOUCH" {
		t.Fatalf("first touch not journaled: %s", e.j.types(1))
	}
	// Same instant, same IP and UA: nothing changes.
	s2, seq2, _ := e.st.Touch(res.Session.ID, ipB, "ua2")
	if s2.Version != 2 || seq2 != 0 || e.j.len() != 2 {
		t.Fatal("no-op touch changed the version or journaled")
	}
	// A clock that went backwards never moves last_active back.
	e.clk.Add(-2000)
	s3, _, _ := e.st.Touch(res.Session.ID, ipA, "ua2")
	if s3.LastActive != t0+3000 || s3.Version != 3 {
		t.Fatalf("last_active went back or IP change not versioned: %+v", s3)
	}
}

func TestTouch_CoalescedToOneRecordPerSecond(t *testing.T) {
	e := newEnv(t, nil)
	res := e.create(CreateRequest{})
	id := res.Session.ID
	e.clk.Add(10)
	e.st.Touch(id, ipA, "") // journaled at once (first touch)
	for i := 0; i < 5; i++ {
		e.clk.Add(100)
		if _, seq, _ := e.st.Touch(id, ipA, ""); seq != 0 {
			t.Fatal("touch within 1 s journaled")
		}
	}
	if got := e.j.types(1); got != "SESSION_TOUCH" {
		t.Fatalf("journal %s", got)
	}
	if n := e.st.FlushTouches(); n != 0 {
		t.Fatal("flushed before 1 s")
	}
	e.clk.Add(500)
	if n := e.st.FlushTouches(); n != 1 {
		t.Fatalf("flushed %d", n)
	}
	recs := e.j.since(2)
	if len(recs) != 1 || recs[0].Touch.Version != 7 || recs[0].Touch.LastActive != t0+510 {
		t.Fatalf("flushed record %+v", recs)
	}
	if n := e.st.FlushTouches(); n != 0 {
		t.Fatal("flushed twice")
	}
}

func TestTouch_PendingTouchDroppedOnRevoke(t *testing.T) {
	e := newEnv(t, nil)
	res := e.create(CreateRequest{})
	e.st.Touch(res.Session.ID, ipA, "")
	e.clk.Add(100)
	e.st.Touch(res.Session.ID, ipB, "") // pending
	e.st.Revoke(res.Session.ID)
	e.clk.Add(5000)
	if n := e.st.FlushTouches(); n != 0 {
		t.Fatal("pending touch of a revoked session written")
	}
	if got := e.j.types(0); got != "SESSION_PUT,SESSION_TOUCH,SESSION_REVOKE" {
		t.Fatalf("journal %s", got)
	}
}

func TestTouch_ExpiredAndRevokedFail(t *testing.T) {
	e := newEnv(t, nil)
	a := e.create(CreateRequest{Token: token(1), TTLSet: true, TTLSeconds: 1})
	b := e.create(CreateRequest{Token: token(2)})
	e.st.Revoke(b.Session.ID)
	e.clk.Add(1001)
	n := e.j.len()
	_, _, err := e.st.Touch(a.Session.ID, ipA, "")
	wantErr(t, err, ErrExpired)
	_, _, err = e.st.Touch(b.Session.ID, ipA, "")
	wantErr(t, err, ErrRevoked)
	_, _, err = e.st.Touch(ID{1}, ipA, "")
	wantErr(t, err, ErrNotFound)
	if e.j.len() != n {
		t.Fatal("failed touch journaled")
	}
}

func TestIdleTimeout_TouchExtendsWindowNeverPastExpiresAt(t *testing.T) {
	e := newEnv(t, nil)
	res := e.create(CreateRequest{Token: token(1), TTLSet: true, TTLSeconds: 100, IdleSet: true, IdleTimeoutSeconds: 30})
	id := res.Session.ID
	e.clk.Set(t0 + 30_000)
	if _, err := e.st.Get(id); err != nil {
		t.Fatal("expired at exactly last_active + idle")
	}
	e.clk.Set(t0 + 20_000)
	e.st.Touch(id, ipA, "") // idle window now ends at 50 s
	e.clk.Set(t0 + 45_000)
	if _, _, err := e.st.Validate(token(1), true, ipA, ""); err != nil { // window → 75 s
		t.Fatal(err)
	}
	e.clk.Set(t0 + 75_001)
	_, err := e.st.Get(id)
	wantErr(t, err, ErrExpired)

	res2 := e.create(CreateRequest{Token: token(2), TTLSet: true, TTLSeconds: 100, IdleSet: true, IdleTimeoutSeconds: 30})
	for ms := int64(0); ms <= 100_000; ms += 10_000 {
		e.clk.Set(res2.Session.CreatedAt + ms)
		if _, _, err := e.st.Touch(res2.Session.ID, ipA, ""); err != nil {
			t.Fatalf("touch at +%d: %v", ms, err)
		}
	}
	e.clk.Set(res2.Session.CreatedAt + 100_001)
	_, err = e.st.Get(res2.Session.ID)
	wantErr(t, err, ErrExpired) // touches never move past expires_at
}

func TestValidate_Results(t *testing.T) {
	e := newEnv(t, nil)
	live := e.create(CreateRequest{Token: token(1)})
	e.create(CreateRequest{Token: token(2), TTLSet: true, TTLSeconds: 1})
	rv := e.create(CreateRequest{Token: token(3)})
	e.st.Revoke(rv.Session.ID)
	e.clk.Add(1500)
	n := e.j.len()
	cases := []struct {
		name string
		tok  string
		want error
	}{
		{"TestValidate_LiveTokenReturnsSession", token(1), nil},
		{"TestValidate_ExpiredTokenReturnsErrExpired", token(2), ErrExpired},
		{"TestValidate_RevokedTokenReturnsErrRevoked", token(3), ErrRevoked},
		{"TestValidate_UnknownTokenReturnsErrNotFound", token(4), ErrNotFound},
		{"TestValidate_15ByteTokenReturnsErrTokenMalformed", strings.Repeat("a", 15), ErrTokenMalformed},
		{"TestValidate_TokenWithSpaceReturnsErrTokenMalformed", "aaaaaaaa aaaaaaaa", ErrTokenMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, seq, err := e.st.Validate(c.tok, false, ipA, "")
			wantErr(t, err, c.want)
			if seq != 0 {
				t.Fatal("validate without touch returned a seq")
			}
			if c.want == nil && (s.ID != live.Session.ID || s.Version != 1 || s.LastActive != t0) {
				t.Fatalf("validate changed or returned the wrong session: %+v", s)
			}
		})
	}
	if e.j.len() != n {
		t.Fatal("validation without touch journaled")
	}
	s, seq, err := e.st.Validate(token(1), true, ipB, "ua")
	if err != nil || seq == 0 || s.Version != 2 || s.LastActive != t0+1500 || s.LastAccessIP != ipB {
		t.Fatalf("validate with touch: %+v %d %v", s, seq, err)
	}
	for _, tok := range []string{token(2), token(3), token(4)} {
		if _, _, err := e.st.Validate(tok, true, ipA, ""); err == nil {
			t.Fatal("touch of non-live token succeeded")
		}
	}
	if e.j.len() != n+1 {
		t.Fatal("failed validate-with-touch journaled")
	}
}

func TestValidate_TTL1sExpiredAt1500msUnknownAfterGrace(t *testing.T) {
	for _, sweep := range []bool{false, true} {
		t.Run(fmt.Sprintf("sweep=%v", sweep), func(t *testing.T) {
			e := newEnv(t, nil)
			res := e.create(CreateRequest{Token: token(1), TTLSet: true, TTLSeconds: 1})
			step := func(at int64, want error) {
				t.Helper()
				e.clk.Set(t0 + at)
				if sweep {
					e.st.Sweep()
				}
				_, _, err := e.st.Validate(token(1), false, ipA, "")
				wantErr(t, err, want)
				_, err = e.st.Get(res.Session.ID)
				if want == nil {
					wantErr(t, err, nil)
				} else {
					wantErr(t, err, want)
				}
			}
			step(1000, nil)         // now == expires_at: still live
			step(1001, ErrExpired)  // now > expires_at
			step(1500, ErrExpired)  // §7
			step(11000, ErrExpired) // expires_at + grace: last instant
			step(11001, ErrNotFound)
			step(12000, ErrNotFound) // §7
			st := e.st.Stats()
			if sweep && (st.Live != 0 || st.Expired != 0) {
				t.Fatalf("not swept: %+v", st)
			}
			if sweep && e.j.types(0) != "SESSION_PUT,SESSION_EXPIRE" {
				t.Fatalf("journal %s", e.j.types(0))
			}
		})
	}
}

func TestRenew_Rules(t *testing.T) {
	e := newEnv(t, nil)
	res := e.create(CreateRequest{Token: token(1)})
	id := res.Session.ID
	n := e.j.len()
	for _, ttl := range []int64{0, -1, 2592001} {
		_, _, err := e.st.Renew(id, ttl)
		wantField(t, err, "ttl_seconds")
	}
	if e.j.len() != n {
		t.Fatal("rejected renew journaled")
	}
	e.clk.Add(1000)
	s, seq, err := e.st.Renew(id, 2592000)
	if err != nil || seq == 0 || s.ExpiresAt != t0+1000+2592000*1000 || s.Version != 2 || s.LastActive != t0+1000 {
		t.Fatalf("renew max: %+v %v", s, err)
	}
	// A shorter TTL shortens expires_at.
	s, _, _ = e.st.Renew(id, 10)
	if s.ExpiresAt != t0+1000+10_000 || s.Version != 3 {
		t.Fatalf("renew shorter: %+v", s)
	}
	if got := e.j.types(n); got != "SESSION_PUT,SESSION_PUT" {
		t.Fatalf("journal %s", got)
	}
	// The sweeper honours the shortened expiry.
	e.clk.Add(10_000 + 10_000 + 1)
	if e.st.Sweep() != 1 {
		t.Fatal("shortened session not swept")
	}
}

func TestRenew_NoResurrection(t *testing.T) {
	e := newEnv(t, nil)
	a := e.create(CreateRequest{Token: token(1), TTLSet: true, TTLSeconds: 1})
	b := e.create(CreateRequest{Token: token(2)})
	e.st.Revoke(b.Session.ID)
	e.clk.Add(1001)
	n := e.j.len()
	_, _, err := e.st.Renew(a.Session.ID, 60)
	wantErr(t, err, ErrExpired)
	_, _, err = e.st.Renew(b.Session.ID, 60)
	wantErr(t, err, ErrRevoked)
	_, _, err = e.st.Renew(ID{9}, 60)
	wantErr(t, err, ErrNotFound)
	if e.j.len() != n {
		t.Fatal("failed renew journaled")
	}
}

func TestRevoke_TwiceThenValidateThenReuse(t *testing.T) {
	e := newEnv(t, nil)
	res := e.create(CreateRequest{UserID: "u1", DeviceID: "d1", Token: token(1), IP: ipA, CreatedBy: "k1"})
	id := res.Session.ID
	e.clk.Add(500)
	ok, seq, err := e.st.Revoke(id)
	if !ok || seq == 0 || err != nil {
		t.Fatal("first revoke")
	}
	ok, seq, err = e.st.Revoke(id)
	if ok || seq != 0 || err != nil {
		t.Fatal("second revoke must report false")
	}
	_, _, err = e.st.Validate(token(1), false, ipA, "")
	wantErr(t, err, ErrRevoked)
	_, err = e.st.Get(id)
	wantErr(t, err, ErrRevoked)
	_, err = e.st.Create(CreateRequest{UserID: "u2", Token: token(1)})
	wantErr(t, err, ErrTokenConflict)
	recs := e.j.since(1)
	if len(recs) != 1 || recs[0].Type != RecordRevoke {
		t.Fatalf("journal %s", e.j.types(1))
	}
	tb := recs[0].Tombstone
	want := Tombstone{ID: id, TokenHash: HashToken(token(1)), UserID: "u1", ExpiresAt: res.Session.ExpiresAt, RevokedAt: t0 + 500, Version: 2}
	if tb != want {
		t.Fatalf("tombstone %+v, want %+v", tb, want)
	}
	// Removed from every index at once.
	for _, q := range []ListQuery{{UserID: "u1"}, {DeviceID: "d1"}, {CreatedBy: "k1"}, {IPPrefix: netipPrefix(ipA)}, {}} {
		if r, _ := e.st.List(q); r.Total != 0 {
			t.Fatalf("revoked session listed by %+v", q)
		}
	}
	if st := e.st.Stats(); st.Live != 0 || st.Tombstones != 1 {
		t.Fatalf("stats %+v", st)
	}
	// Tombstone answers revoked until expires_at + grace, then unknown.
	e.clk.Set(res.Session.ExpiresAt + 10_000)
	_, _, err = e.st.Validate(token(1), false, ipA, "")
	wantErr(t, err, ErrRevoked)
	e.clk.Add(1)
	_, _, err = e.st.Validate(token(1), false, ipA, "")
	wantErr(t, err, ErrNotFound)
	if e.st.Sweep() != 1 || e.st.Stats().Tombstones != 0 {
		t.Fatal("tombstone not swept")
	}
}

func TestRevoke_ExpiredSessionChangesNothing(t *testing.T) {
	e := newEnv(t, nil)
	res := e.create(CreateRequest{Token: token(1), TTLSet: true, TTLSeconds: 1})
	e.clk.Add(2000)
	n := e.j.len()
	ok, _, _ := e.st.Revoke(res.Session.ID)
	if ok || e.j.len() != n {
		t.Fatal("revoking an expired session changed something")
	}
	_, _, err := e.st.Validate(token(1), false, ipA, "")
	wantErr(t, err, ErrExpired)
	e.clk.Add(10_000)
	_, _, err = e.st.Validate(token(1), false, ipA, "")
	wantErr(t, err, ErrNotFound)
	if ok, _, _ := e.st.Revoke(ID{1, 2, 3}); ok {
		t.Fatal("revoking an unknown session reported true")
	}
}

func TestRevokeUser_AllLiveExceptOne(t *testing.T) {
	e := newEnv(t, nil)
	var ids []ID
	for i := 0; i < 6; i++ {
		ids = append(ids, e.create(CreateRequest{UserID: "u1", Token: token(i)}).Session.ID)
	}
	exp := e.create(CreateRequest{UserID: "u1", Token: token(10), TTLSet: true, TTLSeconds: 1})
	other := e.create(CreateRequest{UserID: "u2", Token: token(11)})
	e.st.Revoke(ids[5])
	e.clk.Add(1500)
	n := e.j.len()
	count, seq, err := e.st.RevokeUser("u1", ids[0])
	if err != nil || count != 4 || seq != uint64(n+4) {
		t.Fatalf("revoked %d seq %d err %v", count, seq, err)
	}
	if _, err := e.st.Get(ids[0]); err != nil {
		t.Fatal("except session revoked")
	}
	for _, id := range ids[1:] {
		_, err := e.st.Get(id)
		wantErr(t, err, ErrRevoked)
	}
	_, err = e.st.Get(exp.Session.ID)
	wantErr(t, err, ErrExpired)
	if _, err := e.st.Get(other.Session.ID); err != nil {
		t.Fatal("other user's session revoked")
	}
	if c, seq, _ := e.st.RevokeUser("nobody", ID{}); c != 0 || seq != 0 {
		t.Fatal("revoke-all of unknown user")
	}
}

func TestQuota_RejectCountsOnlyLive(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxPerUser = 3 })
	a := e.create(CreateRequest{UserID: "u", Token: token(1)})
	e.create(CreateRequest{UserID: "u", Token: token(2), TTLSet: true, TTLSeconds: 1})
	e.create(CreateRequest{UserID: "u", Token: token(3)})
	n := e.j.len()
	_, err := e.st.Create(CreateRequest{UserID: "u", Token: token(4)})
	var qe *QuotaError
	if !errors.Is(err, ErrQuotaExceeded) || !errors.As(err, &qe) || qe.Limit != 3 {
		t.Fatalf("error %v", err)
	}
	if e.j.len() != n {
		t.Fatal("rejected create journaled")
	}
	e.clk.Add(1001) // one expires (not swept): no longer counts
	e.create(CreateRequest{UserID: "u", Token: token(4)})
	e.st.Revoke(a.Session.ID) // revoked: does not count
	e.create(CreateRequest{UserID: "u", Token: token(5)})
	_, err = e.st.Create(CreateRequest{UserID: "u", Token: token(6)})
	wantErr(t, err, ErrQuotaExceeded)
	e.create(CreateRequest{UserID: "v", Token: token(7)}) // other users unaffected
}

func TestQuota_EvictOldestByLastActiveThenCreatedAt(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxPerUser = 3; c.OnExceed = QuotaEvictOldest })
	var ids []ID
	for i := 0; i < 3; i++ {
		ids = append(ids, e.create(CreateRequest{UserID: "u", Token: token(i)}).Session.ID) // same created_at
	}
	e.clk.Add(1000)
	e.st.Touch(ids[0], ipA, "") // ids[0] is now the most recently active
	n := e.j.len()
	res := e.create(CreateRequest{UserID: "u", Token: token(10)})
	// ids[1] and ids[2] tie on last_active and created_at; the smaller ID goes.
	want := ids[1]
	if string(ids[2][:]) < string(ids[1][:]) {
		want = ids[2]
	}
	if res.EvictedID != want {
		t.Fatalf("evicted %v, want %v", res.EvictedID, want)
	}
	if got := e.j.types(n); got != "SESSION_REVOKE,SESSION_PUT" {
		t.Fatalf("journal %s", got)
	}
	_, err := e.st.Get(want)
	wantErr(t, err, ErrRevoked)
	if r, _ := e.st.List(ListQuery{UserID: "u"}); r.Total != 3 {
		t.Fatalf("%d live", r.Total)
	}
	// An evicting create with a conflicting token evicts nothing.
	n = e.j.len()
	_, err = e.st.Create(CreateRequest{UserID: "u", Token: token(10)})
	wantErr(t, err, ErrTokenConflict)
	if e.j.len() != n {
		t.Fatal("conflicting create evicted")
	}
}

func TestQuota_EvictOldestPrefersOlderCreatedAt(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxPerUser = 2; c.OnExceed = QuotaEvictOldest })
	a := e.create(CreateRequest{UserID: "u", Token: token(1)})
	e.clk.Add(10)
	e.create(CreateRequest{UserID: "u", Token: token(2)})
	e.clk.Add(10)
	e.st.Touch(a.Session.ID, ipA, "") // a is now newer by last_active
	res := e.create(CreateRequest{UserID: "u", Token: token(3)})
	if res.EvictedID == a.Session.ID || res.EvictedID.IsZero() {
		t.Fatal("evicted the recently active session")
	}
}

// The per-user bound that lets a create skip counting shard by shard
// follows inserts, revocations, sweeps and Reset exactly.
func TestQuota_UserBoundFollowsEntries(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxPerUser = 100 })
	h := e.st.hashKey(lUser, &ikey{s: "u-bound"})
	var ids []ID
	for i := range 5 {
		ids = append(ids, e.create(CreateRequest{UserID: "u-bound", Token: token(i), TTLSet: true, TTLSeconds: int64(1 + i%2)}).Session.ID)
	}
	if got := e.st.userBound(h); got != 5 {
		t.Fatalf("bound %d after 5 creates, want 5", got)
	}
	e.st.Revoke(ids[0])
	if got := e.st.userBound(h); got != 4 {
		t.Fatalf("bound %d after a revoke, want 4", got)
	}
	e.check()
	e.st.Reset()
	if got := e.st.userBound(h); got != 0 {
		t.Fatalf("bound %d after Reset, want 0", got)
	}
	e.check()
}

// TestQuota_EnforcedWhileListsArePending: after a bulk load the per-user
// counters are not maintained until the lists are built, so the quota
// must be counted exactly — for sessions loaded before and created after.
func TestQuota_EnforcedWhileListsArePending(t *testing.T) {
	for _, evict := range []bool{false, true} {
		e := newEnv(t, func(c *Config) {
			c.MaxPerUser = 3
			if evict {
				c.OnExceed = QuotaEvictOldest
			}
		})
		e.st.DeferLists()
		// One session as a snapshot load would bring it, two created live.
		src := newEnv(t, nil)
		loaded := src.create(CreateRequest{UserID: "u", Token: token(1)}).Session
		if err := e.st.NewLoader().LoadSessionBinary(AppendSessionBinary(nil, &loaded)); err != nil {
			t.Fatal(err)
		}
		if e.st.ListsPending() == 0 {
			t.Fatal("no shard pending after DeferLists and a load")
		}
		e.clk.Add(10)
		e.create(CreateRequest{UserID: "u", Token: token(2)})
		e.clk.Add(10)
		e.create(CreateRequest{UserID: "u", Token: token(3)})
		e.clk.Add(10)
		_, err := e.st.Create(CreateRequest{UserID: "u", Token: token(4)})
		switch {
		case !evict && !errors.Is(err, ErrQuotaExceeded):
			t.Fatalf("4th session with lists pending: %v, want quota exceeded", err)
		case evict && err != nil:
			t.Fatalf("evict_oldest: %v", err)
		case evict:
			if _, err := e.st.Get(loaded.ID); !errors.Is(err, ErrRevoked) && !errors.Is(err, ErrNotFound) {
				t.Fatalf("the oldest (loaded) session survived eviction: %v", err)
			}
		}
		if err := e.st.CheckInvariants(); err != nil {
			t.Fatal(err)
		}
	}
}
