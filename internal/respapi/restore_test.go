package respapi

import (
	"context"
	"testing"
	"time"

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
