package auth

import "testing"

func TestRoleAllows_PermissionMatrix(t *testing.T) {
	// Columns: metrics, validator, issuer, admin (04-security §2).
	matrix := map[Capability][4]bool{
		CapMetrics:     {true, false, false, true},
		CapInfo:        {true, true, true, true},
		CapValidate:    {false, true, true, true},
		CapReadSession: {false, true, true, true},
		CapTouch:       {false, true, true, true},
		CapRouting:     {false, true, true, true},
		CapWrite:       {false, false, true, true},
		CapRevokeUser:  {false, false, true, true},
		CapListOwnUser: {false, false, true, true},
		CapListAny:     {false, false, false, true},
		CapScan:        {false, false, false, true},
		CapAdmin:       {false, false, false, true},
	}
	if len(matrix) != len(Capabilities) {
		t.Fatalf("matrix covers %d of %d capabilities", len(matrix), len(Capabilities))
	}
	for _, c := range Capabilities {
		for i, r := range Roles {
			t.Run(string(r)+"/"+c.String(), func(t *testing.T) {
				if got := r.Allows(c); got != matrix[c][i] {
					t.Fatalf("%s.Allows(%s) = %v", r, c, got)
				}
			})
		}
	}
	for _, c := range Capabilities {
		if Role("root").Allows(c) || Role("").Allows(c) {
			t.Fatalf("unknown role allowed %s", c)
		}
	}
	if RoleAdmin.Allows(0) || RoleAdmin.Allows(Capability(200)) {
		t.Fatal("unknown capability allowed")
	}
}

func TestLocalAdmin_HasAdminRights(t *testing.T) {
	p := LocalAdmin()
	if p.KeyID != "LOCAL_ADMIN" || !p.Local || p.Role != RoleAdmin {
		t.Fatalf("%+v", p)
	}
	for _, c := range Capabilities {
		if !p.Can(c) {
			t.Fatalf("LOCAL_ADMIN lacks %s", c)
		}
	}
	var nilP *Principal
	if nilP.Can(CapInfo) {
		t.Fatal("nil principal allowed")
	}
}
