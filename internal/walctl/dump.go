package walctl

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/yndnr/tokmesh-go/internal/crypt"
	"github.com/yndnr/tokmesh-go/internal/engine"
	"github.com/yndnr/tokmesh-go/internal/session"
	"github.com/yndnr/tokmesh-go/internal/snapshot"
	"github.com/yndnr/tokmesh-go/internal/wal"
)

// Snapshot entry types are the engine's.
const (
	entrySession   = engine.EntrySession
	entryTombstone = engine.EntryTombstone
	entryPartition = engine.EntryPartition
)

func entryName(t byte) string { return engine.EntryName(t) }

type dumpLine struct {
	Seq       uint64          `json:"seq"`
	Segment   uint64          `json:"segment"`
	Type      string          `json:"type"`
	Partition uint16          `json:"partition"`
	Epoch     uint64          `json:"epoch"`
	PSeq      uint64          `json:"pseq"`
	Session   json.RawMessage `json:"session,omitempty"`
}

// sessionJSON renders the public session object plus token_hash (never a token).
func sessionJSON(s *session.Session) json.RawMessage {
	b := s.AppendJSON(nil)
	b = append(b[:len(b)-1], `,"token_hash":"`...)
	b = append(b, hexHash(s.TokenHash[:])...)
	b = append(b, `"}`...)
	return b
}

func tombstoneJSON(t *session.Tombstone) json.RawMessage {
	b, _ := json.Marshal(struct {
		ID        string `json:"id"`
		TokenHash string `json:"token_hash"`
		UserID    string `json:"user_id"`
		ExpiresAt int64  `json:"expires_at"`
		RevokedAt int64  `json:"revoked_at"`
		Version   uint64 `json:"version"`
	}{t.ID.String(), hexHash(t.TokenHash[:]), t.UserID, t.ExpiresAt, t.RevokedAt, t.Version})
	return b
}

func recordJSON(r *session.Record) json.RawMessage {
	switch r.Type {
	case session.RecordPut:
		if r.Session != nil {
			return sessionJSON(r.Session)
		}
	case session.RecordTouch:
		ip := ""
		if r.Touch.LastAccessIP.IsValid() {
			ip = r.Touch.LastAccessIP.String()
		}
		b, _ := json.Marshal(struct {
			ID           string `json:"id"`
			LastActive   int64  `json:"last_active"`
			LastAccessIP string `json:"last_access_ip"`
			LastAccessUA string `json:"last_access_ua"`
			Version      uint64 `json:"version"`
		}{r.Touch.ID.String(), r.Touch.LastActive, ip, r.Touch.LastAccessUA, r.Touch.Version})
		return b
	case session.RecordRevoke:
		return tombstoneJSON(&r.Tombstone)
	case session.RecordExpire:
		b, _ := json.Marshal(struct {
			ID      string `json:"id"`
			Version uint64 `json:"version"`
		}{r.ID.String(), r.Version})
		return b
	}
	return nil
}

func recordSessionID(r *session.Record) session.ID {
	switch r.Type {
	case session.RecordPut:
		if r.Session != nil {
			return r.Session.ID
		}
	case session.RecordTouch:
		return r.Touch.ID
	case session.RecordRevoke:
		return r.Tombstone.ID
	case session.RecordExpire:
		return r.ID
	}
	return session.ID{}
}

func parseTypeName(s string) (byte, bool) {
	for t := byte(1); t <= 6; t++ {
		if strings.EqualFold(wal.TypeName(t), s) {
			return t, true
		}
	}
	return 0, false
}

func newDump(g *globals) *cobra.Command {
	var fromSeq, toSeq uint64
	var sessionID, typeName, snapFile string
	cmd := &cobra.Command{
		Use:   "dump",
		Short: "Print decrypted WAL records (or snapshot entries) as JSON lines",
		Long: `dump decrypts WAL records and prints one JSON object per line:
{"seq","segment","type","partition","epoch","pseq","session":{…,"token_hash":"<hex>"}}.
Tokens never appear: only their SHA-256 hashes are stored. With --snapshot it
prints the entries of a snapshot or backup file instead.`,
		Example: `  tokmesh-walctl dump --from-seq 1000 --to-seq 2000
  tokmesh-walctl dump --session-id tmss-01jh8w3m5v00gq1t7c2r9x4bzd
  tokmesh-walctl dump --type SESSION_REVOKE
  tokmesh-walctl dump --snapshot data/snapshots/snapshot-00000000000000001234.snap`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var wantType byte
			if typeName != "" {
				t, ok := parseTypeName(typeName)
				if !ok {
					return exitf(ExitUsage, "--type must be one of SESSION_PUT, SESSION_TOUCH, SESSION_REVOKE, SESSION_EXPIRE, PARTITION_DROP, RESET")
				}
				wantType = t
			}
			var wantID session.ID
			if sessionID != "" {
				id, ok := session.ParseID(sessionID, 1<<16)
				if !ok {
					return exitf(ExitUsage, "--session-id %q is not a session ID", sessionID)
				}
				wantID = id
			}
			l, err := g.lockDataDir()
			if err != nil {
				return err
			}
			defer l.Release()
			if snapFile != "" {
				if _, err := os.Stat(snapFile); err != nil {
					return exitf(ExitNotFound, "%s not found", snapFile)
				}
			}
			key, err := g.key()
			if err != nil {
				return err
			}
			if snapFile != "" {
				return dumpSnapshot(g, snapFile, key, wantID)
			}
			segs, err := wal.ListSegments(g.walDir())
			if err != nil {
				return exitf(ExitIO, "%v", err)
			}
			segOf := func(seq uint64) uint64 {
				id := uint64(0)
				for _, s := range segs {
					if s.FirstSeq <= seq {
						id = s.ID
					}
				}
				return id
			}
			enc := json.NewEncoder(g.stdout)
			enc.SetEscapeHTML(false)
			after := uint64(0)
			if fromSeq > 0 {
				after = fromSeq - 1
			}
			_, err = wal.Replay(g.walDir(), key, wal.ReplayOptions{AfterSeq: after}, func(seq uint64, typ byte, payload []byte) error {
				if toSeq > 0 && seq > toSeq {
					return errStopDump
				}
				if wantType != 0 && typ != wantType {
					return nil
				}
				rec, err := session.DecodeRecord(session.RecordType(typ), payload)
				if err != nil {
					return fmt.Errorf("seq %d: %w", seq, err)
				}
				if sessionID != "" && recordSessionID(&rec) != wantID {
					return nil
				}
				return enc.Encode(dumpLine{Seq: seq, Segment: segOf(seq), Type: wal.TypeName(typ), Partition: rec.Partition,
					Epoch: rec.Epoch, PSeq: rec.PSeq, Session: recordJSON(&rec)})
			})
			if err != nil && !errors.Is(err, errStopDump) {
				if errors.Is(err, wal.ErrKeyMismatch) {
					return exitf(ExitNoKey, "%v", err)
				}
				return exitf(ExitProblems, "%v (run `tokmesh-walctl verify`)", err)
			}
			return nil
		},
	}
	cmd.Flags().Uint64Var(&fromSeq, "from-seq", 0, "first seq to print")
	cmd.Flags().Uint64Var(&toSeq, "to-seq", 0, "last seq to print (0 = end)")
	cmd.Flags().StringVar(&sessionID, "session-id", "", "only records of this session")
	cmd.Flags().StringVar(&typeName, "type", "", "only records of this type (SESSION_PUT, SESSION_TOUCH, SESSION_REVOKE, SESSION_EXPIRE, PARTITION_DROP, RESET)")
	cmd.Flags().StringVar(&snapFile, "snapshot", "", "dump the entries of this snapshot or backup file instead of the WAL")
	return cmd
}

var errStopDump = errors.New("stop")

type snapLine struct {
	Entry     string          `json:"entry"`
	Partition *uint16         `json:"partition,omitempty"`
	Epoch     *uint64         `json:"epoch,omitempty"`
	PSeq      *uint64         `json:"pseq,omitempty"`
	Session   json.RawMessage `json:"session,omitempty"`
}

func dumpSnapshot(g *globals, path string, key *crypt.MasterKey, wantID session.ID) error {
	r, err := snapshot.Open(path, key)
	if err != nil {
		if errors.Is(err, snapshot.ErrKeyMismatch) {
			return exitf(ExitNoKey, "%v", err)
		}
		return exitf(ExitProblems, "%v", err)
	}
	defer r.Close()
	enc := json.NewEncoder(g.stdout)
	enc.SetEscapeHTML(false)
	for {
		typ, payload, err := r.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return exitf(ExitProblems, "%v (run `tokmesh-walctl verify`)", err)
		}
		line := snapLine{Entry: entryName(typ)}
		switch typ {
		case entrySession:
			s, err := session.DecodeSessionBinary(payload)
			if err != nil {
				return exitf(ExitProblems, "%s: session entry: %v", path, err)
			}
			if !wantID.IsZero() && s.ID != wantID {
				continue
			}
			line.Session = sessionJSON(s)
		case entryTombstone:
			t, err := session.DecodeTombstoneBinary(payload)
			if err != nil {
				return exitf(ExitProblems, "%s: tombstone entry: %v", path, err)
			}
			if !wantID.IsZero() && t.ID != wantID {
				continue
			}
			line.Session = tombstoneJSON(&t)
		case entryPartition:
			if !wantID.IsZero() {
				continue
			}
			p, epoch, pseq, err := engine.DecodePartitionEntry(payload)
			if err != nil {
				return exitf(ExitProblems, "%s: %v", path, err)
			}
			line.Partition, line.Epoch, line.PSeq = &p, &epoch, &pseq
		}
		if err := enc.Encode(line); err != nil {
			return err
		}
	}
}
