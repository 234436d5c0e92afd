package localadmin

import (
	"runtime"
	"strings"
	"testing"
)

func TestPipeSDDL_GrantsOnlyLocalAdminsAndServer(t *testing.T) {
	got := pipeSDDL("S-1-5-80-123")
	for _, want := range []string{"D:P", "(D;;GA;;;NU)", "(A;;GA;;;SY)", "(A;;GA;;;BA)", "(A;;GA;;;S-1-5-80-123)"} {
		if !strings.Contains(got, want) {
			t.Errorf("SDDL %q lacks %q", got, want)
		}
	}
	if strings.Contains(got, ";;;WD)") || strings.Contains(got, ";;;AU)") {
		t.Errorf("SDDL %q grants everyone / authenticated users", got)
	}
}

func TestListenPipe_RefusedOffWindows(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows has named pipes")
	}
	if _, err := ListenPipe(`\\.\pipe\tokmesh-test`); err == nil {
		t.Fatal("ListenPipe succeeded off Windows")
	}
}
