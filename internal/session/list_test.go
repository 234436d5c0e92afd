package session

import (
	"bytes"
	"net/netip"
	"slices"
	"testing"
)

func TestList_FiltersSortAndPaging(t *testing.T) {
	e := newEnv(t, nil)
	ip1 := netip.MustParseAddr("10.0.0.1")
	ip2 := netip.MustParseAddr("10.0.1.2")
	ip6 := netip.MustParseAddr("2001:db8::7")
	var all []Session
	for i := 0; i < 30; i++ {
		req := CreateRequest{UserID: []string{"alice", "bob"}[i%2], Token: token(i), CreatedBy: []string{"k1", "k2", "k3"}[i%3], IP: ip1}
		if i%5 == 0 {
			req.DeviceID = "phone"
			req.IP = ip6
		}
		if i%7 == 0 {
			req.IP = netip.AddrFrom16(ip2.As16()) // v4-mapped: stored as IPv4
		}
		all = append(all, e.create(req).Session)
		if i%4 == 0 {
			e.clk.Add(1) // some created_at ties
		}
	}
	e.clk.Add(100)
	touched := all[3]
	e.st.Touch(touched.ID, ip2, "") // last_access_ip differs from ip_address
	e.st.Revoke(all[4].ID)
	expired := e.create(CreateRequest{UserID: "alice", Token: token(99), TTLSet: true, TTLSeconds: 1, IP: ip1})
	e.clk.Add(1500)
	_ = expired

	live := func(pred func(s *Session) bool) []Session {
		var out []Session
		for _, s := range all {
			if s.ID == all[4].ID {
				continue
			}
			cur, err := e.st.Get(s.ID)
			if err != nil {
				t.Fatal(err)
			}
			if pred(&cur) {
				out = append(out, cur)
			}
		}
		return out
	}
	order := func(s []Session, byActive, desc bool) []ID {
		slices.SortFunc(s, func(a, b Session) int {
			ka, kb := a.CreatedAt, b.CreatedAt
			if byActive {
				ka, kb = a.LastActive, b.LastActive
			}
			if ka != kb {
				if (ka < kb) != desc {
					return -1
				}
				return 1
			}
			return bytes.Compare(a.ID[:], b.ID[:])
		})
		var ids []ID
		for _, x := range s {
			ids = append(ids, x.ID)
		}
		return ids
	}
	ids := func(s []Session) []ID {
		var out []ID
		for _, x := range s {
			out = append(out, x.ID)
		}
		return out
	}
	cases := []struct {
		name      string
		q         ListQuery
		pred      func(s *Session) bool
		indexUsed bool
	}{
		{"user", ListQuery{UserID: "alice"}, func(s *Session) bool { return s.UserID == "alice" }, true},
		{"device", ListQuery{DeviceID: "phone"}, func(s *Session) bool { return s.DeviceID == "phone" }, true},
		{"created_by", ListQuery{CreatedBy: "k2"}, func(s *Session) bool { return s.CreatedBy == "k2" }, true},
		{"exact ip matches last_access_ip", ListQuery{IPPrefix: netip.PrefixFrom(ip2, 32)}, func(s *Session) bool { return s.IPAddress == ip2 || s.LastAccessIP == ip2 }, true},
		{"exact ip as v4-mapped /128", ListQuery{IPPrefix: netip.PrefixFrom(netip.AddrFrom16(ip2.As16()), 128)}, func(s *Session) bool { return s.IPAddress == ip2 || s.LastAccessIP == ip2 }, true},
		{"exact ipv6", ListQuery{IPPrefix: netip.PrefixFrom(ip6, 128)}, func(s *Session) bool { return s.IPAddress == ip6 }, true},
		{"cidr scans", ListQuery{IPPrefix: netip.MustParsePrefix("10.0.0.0/16")}, func(s *Session) bool { return s.IPAddress.Is4() || s.LastAccessIP.Is4() }, false},
		{"no filter scans", ListQuery{}, func(s *Session) bool { return true }, false},
		{"user+created_by", ListQuery{UserID: "bob", CreatedBy: "k1"}, func(s *Session) bool { return s.UserID == "bob" && s.CreatedBy == "k1" }, true},
		{"created window", ListQuery{CreatedAfter: t0 + 1, CreatedBefore: t0 + 6}, func(s *Session) bool { return s.CreatedAt > t0+1 && s.CreatedAt < t0+6 }, false},
		{"active_after", ListQuery{ActiveAfter: t0 + 50}, func(s *Session) bool { return s.LastActive > t0+50 }, false},
	}
	for _, c := range cases {
		for _, sortBy := range []string{"", "last_active"} {
			for _, desc := range []bool{false, true} {
				want := order(live(c.pred), sortBy == "last_active", desc)
				q := c.q
				q.SortBy, q.Desc, q.Size = sortBy, desc, 100
				r, err := e.st.List(q)
				if err != nil {
					t.Fatal(err)
				}
				if r.Total != len(want) || !slices.Equal(ids(r.Items), want) || r.IndexUsed != c.indexUsed {
					t.Fatalf("%s sort=%q desc=%v: total %d items %d (want %d), indexUsed %v", c.name, sortBy, desc, r.Total, len(r.Items), len(want), r.IndexUsed)
				}
				// Paging: size 4, every page.
				var paged []ID
				for page := 1; ; page++ {
					q.Page, q.Size = page, 4
					r, _ := e.st.List(q)
					if len(r.Items) == 0 {
						break
					}
					paged = append(paged, ids(r.Items)...)
				}
				if !slices.Equal(paged, want) {
					t.Fatalf("%s: pages differ from the full list", c.name)
				}
				// Limit returns the first Limit in order.
				q.Page, q.Size, q.Limit = 2, 3, 5
				r, _ = e.st.List(q)
				if !slices.Equal(ids(r.Items), want[:min(5, len(want))]) || r.Total != len(want) {
					t.Fatalf("%s: limit", c.name)
				}
			}
		}
	}
	for _, q := range []ListQuery{{Page: -1}, {Size: -1}, {SortBy: "user_id"}, {Limit: -1}} {
		if _, err := e.st.List(q); err == nil {
			t.Errorf("List(%+v) accepted", q)
		}
	}
}
