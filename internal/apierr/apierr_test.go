package apierr

import (
	"regexp"
	"strings"
	"testing"
)

func TestCatalogue_CodesAreUniqueWellFormedAndHaveMatchingStatus(t *testing.T) {
	re := regexp.MustCompile(`^(OK|TM-(SYS|ARG|AUTH|SESS|TOKN|ADMIN|CLST|CFG)-\d{4})$`)
	seen := map[Code]bool{}
	for _, e := range catalogue {
		if seen[e.Code] {
			t.Fatalf("duplicate code %s", e.Code)
		}
		seen[e.Code] = true
		if !re.MatchString(string(e.Code)) || e.Message == "" {
			t.Fatalf("malformed entry %+v", e)
		}
		parts := strings.Split(string(e.Code), "-")
		if len(parts) == 3 && e.Status != 0 && parts[1] != "ARG" && parts[1] != "CFG" && parts[2][0] != byte('0'+e.Status/100) {
			t.Fatalf("%s has status %d", e.Code, e.Status)
		}
	}
}

func TestError_RendersCatalogueMessageAndStatus(t *testing.T) {
	e := New(SessNotFound)
	if e.Code.Status() != 404 || e.Msg() != "session not found" || e.Error() != "TM-SESS-4040 session not found" {
		t.Fatalf("%v", e)
	}
	if Code("TM-NOPE-0000").Status() != 500 || TokenUnknown.Status() != 500 {
		t.Fatal("unknown and validate-only codes must not map to a 2xx-4xx status")
	}
	if As(New(SessExpired)).Code != SessExpired || As(errFake{}).Code != SysInternal {
		t.Fatal("As")
	}
}

type errFake struct{}

func (errFake) Error() string { return "x" }
