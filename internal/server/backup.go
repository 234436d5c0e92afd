package server

import (
	"context"
	"errors"
	"time"

	"github.com/yndnr/tokmesh-go/internal/auth"
	"github.com/yndnr/tokmesh-go/internal/engine"
)

// keyTable encodes the current API key table (hashes only) for a backup.
func (sec *security) keyTable() ([]byte, int, error) {
	st := auth.NewState()
	keys := sec.store.View().Keys()
	for i := range keys {
		if _, _, err := st.Apply(&auth.Command{Type: auth.CmdCreate, Key: keys[i]}); err != nil {
			return nil, 0, err
		}
	}
	return st.MarshalBinary(0), len(keys), nil
}

// mergeKeys adds the backup's keys that do not exist now; existing keys are
// never changed (a disabled key is not re-enabled) — 05-storage §7 step 4.
func (sec *security) mergeKeys(data []byte) (int, error) {
	st, _, err := auth.UnmarshalState(data)
	if err != nil {
		return 0, err
	}
	have := sec.store.View()
	added := 0
	for _, k := range st.Keys() {
		if _, ok := have.Get(k.ID); ok {
			continue
		}
		if _, err := sec.store.Apply(context.Background(), auth.Command{Type: auth.CmdCreate, Key: k}); err != nil {
			if errors.Is(err, auth.ErrKeyExists) {
				continue
			}
			return added, err
		}
		added++
	}
	return added, nil
}

// backupRetention deletes old backups once a day (storage.backup.*).
func (s *Server) backupRetention(stop <-chan struct{}) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	last := time.Time{}
	for {
		if time.Since(last) >= 24*time.Hour {
			if e := s.Engine(); e != nil {
				b := s.config().Storage.Backup
				removed, err := e.PruneBackups(b.RetentionDays, b.RetainMin)
				switch {
				case errors.Is(err, engine.ErrBusy):
					// retry at the next tick
				case err != nil:
					s.log.Error("backup retention failed", "error", err.Error())
					last = time.Now()
				default:
					if len(removed) > 0 {
						s.log.Info("old backups deleted", "count", len(removed))
					}
					last = time.Now()
				}
			}
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}
