package respapi

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/yndnr/tokmesh-go/internal/apierr"
	"github.com/yndnr/tokmesh-go/internal/auth"
	"github.com/yndnr/tokmesh-go/internal/engine"
)

// TestRestore_BusinessCommandsGetMaintenanceError: while a restore holds
// the engine in maintenance, session commands answer -TM-ADMIN-5031 (the
// engine's business gate, as over HTTP) even without a server-level gate,
// and work again once the restore has finished.
func TestRestore_BusinessCommandsGetMaintenanceError(t *testing.T) {
	e := newEnv(t)
	c := e.client(auth.RoleIssuer, 2)
	ctx := context.Background()
	s := create(t, c, `{"user_id":"u-restore"}`)
	b, err := e.eng.Backup(engine.BackupOptions{CreatedBy: "LOCAL_ADMIN"})
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	finished := make(chan struct{})
	_, err = e.eng.StartRestore(engine.RestoreSource{BackupID: b.BackupID}, "LOCAL_ADMIN", engine.RestoreCallbacks{
		KeyTable:  func() ([]byte, int, error) { <-release; return nil, 0, nil },
		MergeKeys: func([]byte) (int, error) { return 0, nil },
		Finished:  func(engine.RestoreJob) { close(finished) },
	})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !e.eng.Maintenance() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	wantErr(t, c.Do(ctx, "TM.VALIDATE", s.Token).Err(), "TM-ADMIN-5031")
	wantErr(t, c.Do(ctx, "TM.CREATE", `{"user_id":"u-2"}`).Err(), "TM-ADMIN-5031")
	wantErr(t, c.Do(ctx, "GET", s.SessionID).Err(), "TM-ADMIN-5031")
	if err := c.Ping(ctx).Err(); err != nil { // not a session command
		t.Fatal(err)
	}
	close(release)
	select {
	case <-finished:
	case <-time.After(30 * time.Second):
		t.Fatal("restore did not finish")
	}
	if err := c.Do(ctx, "TM.VALIDATE", s.Token).Err(); err != nil {
		t.Fatalf("validate after the restore: %v", err)
	}
}

// The readiness gate (04 §3 step 5) answers before the key checks (steps
// 10–13), as over HTTP: an unauthenticated or wrong-role session command
// on a node that cannot serve gets the gate's code, and PING is not gated.
func TestGate_AnswersBeforeAuthAndRole(t *testing.T) {
	var closed atomic.Bool
	closed.Store(true)
	e := newEnv(t, func(c *Config) {
		c.Gate = func() *apierr.Error {
			if closed.Load() {
				return &apierr.Error{Code: apierr.SysNotReady, RetryAfter: 1}
			}
			return nil
		}
	})
	ctx := context.Background()
	anon, metrics := e.anon(), e.client(auth.RoleMetrics, 2)
	wantErr(t, anon.Do(ctx, "TM.VALIDATE", "tmtk_whatever-token-000").Err(), "TM-SYS-5030 ")
	wantErr(t, metrics.Do(ctx, "TM.CREATE", `{"user_id":"u"}`).Err(), "TM-SYS-5030 ")
	if err := anon.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING is not gated: %v", err)
	}
	closed.Store(false)
	wantErr(t, anon.Do(ctx, "TM.VALIDATE", "tmtk_whatever-token-000").Err(), "TM-AUTH-4010 authentication required")
	wantErr(t, metrics.Do(ctx, "TM.CREATE", `{"user_id":"u"}`).Err(), "TM-AUTH-4030 permission denied")
}
