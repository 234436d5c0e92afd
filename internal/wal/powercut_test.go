package wal

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/yndnr/tokmesh-go/internal/crypt"
)

// errPowerOff is what every operation returns between PowerCut and Restart.
var errPowerOff = errors.New("simfs: power is off")

// simFS is an in-memory file system that models what survives a power cut:
// file bytes survive only once fsynced (Sync), directory entries (creates,
// renames, removes) only once their directory is fsynced (SyncDir).
type simFS struct {
	mu      sync.Mutex
	files   map[string]*simInode // namespace as the process sees it
	durable map[string]*simInode // namespace as of the last SyncDir of each dir
	dead    bool
	cutAt   time.Time

	// Fault injection: called before each file Sync / Write; a non-nil error is returned.
	syncHook  func(name string) error
	writeHook func(name string) error
	syncs     int
	// cutHook, if set, is asked before every mutating operation ("write",
	// "sync", "syncdir", "rename", "remove", "create", "truncate"); returning
	// true cuts the power right there (the operation does not happen).
	cutHook func(op, name string) bool
	cutRng  *rand.Rand // torn-write randomness for cuts by cutHook (nil: lose all unsynced bytes)
}

// cutLocked consults cutHook; s.mu must be held.
func (s *simFS) cutLocked(op, name string) bool {
	if s.cutHook != nil && !s.dead && s.cutHook(op, name) {
		s.powerCutLocked(s.cutRng)
	}
	return s.dead
}

type simInode struct {
	data   []byte // what the process reads back
	synced []byte // what is on the platter
}

func newSimFS() *simFS {
	return &simFS{files: map[string]*simInode{}, durable: map[string]*simInode{}}
}

type simFile struct {
	fs     *simFS
	name   string
	ino    *simInode
	append bool
	rdonly bool
	pos    int64
	closed bool
}

type simInfo struct {
	name string
	size int64
}

func (i simInfo) Name() string       { return i.name }
func (i simInfo) Size() int64        { return i.size }
func (i simInfo) Mode() fs.FileMode  { return 0o600 }
func (i simInfo) ModTime() time.Time { return time.Time{} }
func (i simInfo) IsDir() bool        { return false }
func (i simInfo) Sys() any           { return nil }

func (s *simFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	name = filepath.Clean(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dead {
		return nil, errPowerOff
	}
	if flag&os.O_CREATE != 0 && s.cutLocked("create", name) {
		return nil, errPowerOff
	}
	ino, ok := s.files[name]
	switch {
	case ok && flag&os.O_CREATE != 0 && flag&os.O_EXCL != 0:
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrExist}
	case !ok && flag&os.O_CREATE == 0:
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	case !ok:
		ino = &simInode{}
		s.files[name] = ino
	}
	if flag&os.O_TRUNC != 0 {
		ino.data = nil
	}
	return &simFile{fs: s, name: name, ino: ino, append: flag&os.O_APPEND != 0, rdonly: flag&(os.O_WRONLY|os.O_RDWR) == 0}, nil
}

func (s *simFS) Rename(oldpath, newpath string) error {
	oldpath, newpath = filepath.Clean(oldpath), filepath.Clean(newpath)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dead || s.cutLocked("rename", newpath) {
		return errPowerOff
	}
	ino, ok := s.files[oldpath]
	if !ok {
		return &fs.PathError{Op: "rename", Path: oldpath, Err: fs.ErrNotExist}
	}
	delete(s.files, oldpath)
	s.files[newpath] = ino
	return nil
}

func (s *simFS) Remove(name string) error {
	name = filepath.Clean(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dead || s.cutLocked("remove", name) {
		return errPowerOff
	}
	if _, ok := s.files[name]; !ok {
		return &fs.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
	}
	delete(s.files, name)
	return nil
}

func (s *simFS) ReadDir(dir string) ([]string, error) {
	dir = filepath.Clean(dir)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dead {
		return nil, errPowerOff
	}
	var names []string
	for p := range s.files {
		if filepath.Dir(p) == dir {
			names = append(names, filepath.Base(p))
		}
	}
	slices.Sort(names)
	return names, nil
}

func (s *simFS) MkdirAll(dir string, perm os.FileMode) error { return nil }

func (s *simFS) SyncDir(dir string) error {
	dir = filepath.Clean(dir)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dead || s.cutLocked("syncdir", dir) {
		return errPowerOff
	}
	for p := range s.durable {
		if filepath.Dir(p) == dir {
			if _, ok := s.files[p]; !ok {
				delete(s.durable, p)
			}
		}
	}
	for p, ino := range s.files {
		if filepath.Dir(p) == dir {
			s.durable[p] = ino
		}
	}
	return nil
}

// PowerCut turns the power off: from now on every operation fails, and the
// state becomes what was durable. With rng nil every unsynced byte is lost;
// otherwise each file keeps a random prefix of its unsynced appended bytes,
// sometimes followed by zeros or garbage (a torn write).
func (s *simFS) PowerCut(rng *rand.Rand) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.powerCutLocked(rng)
}

func (s *simFS) powerCutLocked(rng *rand.Rand) {
	s.dead = true
	s.cutAt = time.Now()
	files := map[string]*simInode{}
	for p, ino := range s.durable {
		content := slices.Clone(ino.synced)
		if rng != nil && len(ino.data) > len(ino.synced) && bytes.HasPrefix(ino.data, ino.synced) {
			extra := ino.data[len(ino.synced):]
			content = append(content, extra[:rng.IntN(len(extra)+1)]...)
			switch rng.IntN(3) {
			case 1:
				content = append(content, make([]byte, rng.IntN(300))...)
			case 2:
				junk := make([]byte, rng.IntN(300))
				for i := range junk {
					junk[i] = byte(rng.Uint32())
				}
				content = append(content, junk...)
			}
		}
		ino.data, ino.synced = content, slices.Clone(content)
		files[p] = ino
	}
	s.files = files
	s.durable = make(map[string]*simInode, len(files))
	for p, ino := range files {
		s.durable[p] = ino
	}
}

// Restart turns the power back on.
func (s *simFS) Restart() {
	s.mu.Lock()
	s.dead = false
	s.mu.Unlock()
}

func (s *simFS) cutTime() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cutAt
}

func (f *simFile) Write(p []byte) (int, error) {
	s := f.fs
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dead || s.cutLocked("write", f.name) {
		return 0, errPowerOff
	}
	if f.closed || f.rdonly {
		return 0, os.ErrInvalid
	}
	if s.writeHook != nil {
		if err := s.writeHook(f.name); err != nil {
			return 0, err
		}
	}
	if f.append {
		f.ino.data = append(f.ino.data, p...)
		return len(p), nil
	}
	end := f.pos + int64(len(p))
	if int64(len(f.ino.data)) < end {
		f.ino.data = append(f.ino.data, make([]byte, end-int64(len(f.ino.data)))...)
	}
	copy(f.ino.data[f.pos:], p)
	f.pos = end
	return len(p), nil
}

func (f *simFile) ReadAt(p []byte, off int64) (int, error) {
	s := f.fs
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dead {
		return 0, errPowerOff
	}
	if off >= int64(len(f.ino.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.ino.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *simFile) Sync() error {
	s := f.fs
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dead || s.cutLocked("sync", f.name) {
		return errPowerOff
	}
	if s.syncHook != nil {
		if err := s.syncHook(f.name); err != nil {
			return err
		}
	}
	s.syncs++
	f.ino.synced = slices.Clone(f.ino.data)
	return nil
}

func (f *simFile) Close() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	f.closed = true
	return nil
}

func (f *simFile) Truncate(size int64) error {
	s := f.fs
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dead || s.cutLocked("truncate", f.name) {
		return errPowerOff
	}
	if size < int64(len(f.ino.data)) {
		f.ino.data = f.ino.data[:size:size]
	}
	return nil
}

func (f *simFile) Stat() (os.FileInfo, error) {
	s := f.fs
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dead {
		return nil, errPowerOff
	}
	return simInfo{name: filepath.Base(f.name), size: int64(len(f.ino.data))}, nil
}

// --- power-cut scenarios ---

type ack struct {
	seq     uint64
	at      time.Time
	durable bool
}

type cutScenario struct {
	mode         SyncMode
	interval     time.Duration
	durableEvery int           // every n-th record is waited for durably (0: none)
	runFor       time.Duration // load time before the cut; 0: 60-160ms
}

// runPowerCuts runs cycles of: open, concurrent Append+Wait, power cut,
// restart, Replay with torn-tail truncation. check gets the acknowledgments
// and the recovered last seq of each cycle.
func runPowerCuts(t *testing.T, sc cutScenario, cycles int, check func(t *testing.T, acks []ack, cutAt time.Time, recovered uint64)) {
	t.Helper()
	fsys := newSimFS()
	const dir = "/sim/data/wal"
	key := testKey(t)
	rng := rand.New(rand.NewPCG(uint64(sc.mode), 42))
	var (
		pmu      sync.Mutex
		payloads = map[uint64][]byte{}
	)
	next := uint64(1)
	for cycle := 0; cycle < cycles; cycle++ {
		var fatals atomic.Int32
		ciph := crypt.AES256GCM
		if cycle%2 == 1 {
			ciph = crypt.ChaCha20Poly1305
		}
		w, err := Open(Options{Dir: dir, Key: key, Cipher: ciph, SyncMode: sc.mode, SyncInterval: sc.interval,
			SegmentSize: 16 << 10, FS: fsys, OnFatal: func(error) { fatals.Add(1) }}, next)
		if err != nil {
			t.Fatal(err)
		}
		var (
			stop atomic.Bool
			amu  sync.Mutex
			acks []ack
			wg   sync.WaitGroup
		)
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; !stop.Load(); i++ {
					p := []byte(fmt.Sprintf("cycle %d worker %d record %d", cycle, g, i))
					pmu.Lock() // like a shard lock
					seq := w.Append(TypeSessionPut, p)
					payloads[seq] = p
					pmu.Unlock()
					durable := sc.durableEvery > 0 && i%sc.durableEvery == 0
					if err := w.Wait(seq, durable); err == nil {
						amu.Lock()
						acks = append(acks, ack{seq, time.Now(), durable})
						amu.Unlock()
					}
					if sc.mode == SyncNone && !durable {
						time.Sleep(10 * time.Microsecond) // do not flood an unbounded queue
					}
				}
			}()
		}
		run := sc.runFor
		if run == 0 {
			run = time.Duration(60+rng.IntN(100)) * time.Millisecond
		}
		time.Sleep(run)
		var cutRng *rand.Rand
		if cycle%2 == 1 {
			cutRng = rng // keep a random torn piece of the unsynced bytes
		}
		fsys.PowerCut(cutRng)
		cutAt := fsys.cutTime()
		stop.Store(true)
		wg.Wait()
		// The writer fails on its first I/O after the cut; if it had nothing
		// left to do, it never notices.
		cerr := w.Close()
		if n := fatals.Load(); n > 1 || (n == 1) != (cerr != nil) {
			t.Fatalf("cycle %d: OnFatal called %d times, Close returned %v", cycle, n, cerr)
		}
		fsys.Restart()

		n := 0
		res, err := Replay(dir, key, ReplayOptions{TruncateTornTail: true, FS: fsys}, func(seq uint64, typ byte, p []byte) error {
			n++
			pmu.Lock()
			want := payloads[seq]
			pmu.Unlock()
			if typ != TypeSessionPut || !bytes.Equal(p, want) {
				return fmt.Errorf("seq %d: payload %q, appended %q", seq, p, want)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("cycle %d: replay after power cut: %v", cycle, err)
		}
		if uint64(n) != res.LastSeq {
			t.Fatalf("cycle %d: replayed %d records, last seq %d", cycle, n, res.LastSeq)
		}
		t.Logf("cycle %d: %d acks, recovered up to %d, torn tail %+v", cycle, len(acks), res.LastSeq, res.TornTail)
		check(t, acks, cutAt, res.LastSeq)
		// Seqs after the recovered point are assigned again next cycle.
		pmu.Lock()
		for s := range payloads {
			if s > res.LastSeq {
				delete(payloads, s)
			}
		}
		pmu.Unlock()
		next = res.LastSeq + 1
	}
}

func TestPowerCut_AlwaysModeLosesNothingAcknowledged(t *testing.T) {
	runPowerCuts(t, cutScenario{mode: SyncAlways}, 4, func(t *testing.T, acks []ack, _ time.Time, recovered uint64) {
		if len(acks) == 0 {
			t.Fatal("no acknowledgments")
		}
		for _, a := range acks {
			if a.seq > recovered {
				t.Fatalf("acknowledged seq %d lost (recovered up to %d)", a.seq, recovered)
			}
		}
	})
}

func TestPowerCut_IntervalModeLosesAtMostTheLastInterval(t *testing.T) {
	const interval = 10 * time.Millisecond
	const slack = 100 * time.Millisecond // scheduling on 2 shared cores, -race
	exercised := 0
	runPowerCuts(t, cutScenario{mode: SyncInterval, interval: interval, runFor: 300 * time.Millisecond}, 4, func(t *testing.T, acks []ack, cutAt time.Time, recovered uint64) {
		old, lost := 0, 0
		for _, a := range acks {
			if a.seq > recovered && a.at.Before(cutAt.Add(-interval-slack)) {
				t.Fatalf("seq %d acknowledged %v before the cut was lost", a.seq, cutAt.Sub(a.at))
			}
			if a.at.Before(cutAt.Add(-interval - slack)) {
				old++
			}
			if a.seq > recovered {
				lost++
			}
		}
		t.Logf("%d acknowledgments older than the loss window (all kept), %d recent ones lost", old, lost)
		if old > 0 {
			exercised++
		}
	})
	if exercised == 0 {
		t.Fatal("no cycle had acknowledgments older than the loss window")
	}
}

func TestPowerCut_DurableWaitsLoseNothingInAnyMode(t *testing.T) {
	for _, mode := range []SyncMode{SyncNone, SyncInterval, SyncAlways} {
		t.Run(mode.String(), func(t *testing.T) {
			runPowerCuts(t, cutScenario{mode: mode, interval: time.Hour, durableEvery: 4}, 4, func(t *testing.T, acks []ack, _ time.Time, recovered uint64) {
				durable := 0
				for _, a := range acks {
					if a.durable {
						durable++
						if a.seq > recovered {
							t.Fatalf("durably acknowledged seq %d lost (recovered up to %d)", a.seq, recovered)
						}
					}
				}
				if durable == 0 {
					t.Fatal("no durable acknowledgments")
				}
			})
		})
	}
}

func TestPowerCut_AtEveryOperationOfOpenAppendAndRoll(t *testing.T) {
	// Cut the power at the k-th file system operation, for every k through
	// Open, appends and several segment rolls (temp header, fsync, rename,
	// directory fsync). Every acknowledged record must survive and Replay
	// must succeed.
	key := testKey(t)
	const dir = "/sim/wal"
	for k := 1; k <= 2000; k++ {
		fsys := newSimFS()
		if k%2 == 0 {
			fsys.cutRng = rand.New(rand.NewPCG(uint64(k), 7))
		}
		ops := 0
		fsys.cutHook = func(op, name string) bool { ops++; return ops == k }
		var acked uint64
		w, err := Open(Options{Dir: dir, Key: key, SyncMode: SyncAlways, SegmentSize: 400, FS: fsys, OnFatal: func(error) {}}, 1)
		if err == nil {
			for i := 0; i < 60; i++ {
				seq := w.Append(TypeSessionPut, payloadFor(uint64(i+1)))
				if w.Wait(seq, false) != nil {
					break
				}
				acked = seq
			}
			w.Close()
		}
		cutHappened := fsys.dead
		fsys.Restart()
		fsys.cutHook = nil
		var got []uint64
		res, err := Replay(dir, key, ReplayOptions{TruncateTornTail: true, FS: fsys}, func(seq uint64, _ byte, p []byte) error {
			if !bytes.Equal(p, payloadFor(seq)) {
				return fmt.Errorf("seq %d payload mismatch", seq)
			}
			got = append(got, seq)
			return nil
		})
		if err != nil {
			t.Fatalf("cut at op %d: replay: %v", k, err)
		}
		if res.LastSeq < acked {
			t.Fatalf("cut at op %d: acknowledged up to %d, recovered %d", k, acked, res.LastSeq)
		}
		// And the WAL can be reopened and continued.
		w, err = Open(Options{Dir: dir, Key: key, SyncMode: SyncAlways, SegmentSize: 400, FS: fsys}, res.LastSeq+1)
		if err != nil {
			t.Fatalf("cut at op %d: reopen: %v", k, err)
		}
		w.Append(TypeSessionPut, payloadFor(res.LastSeq+1))
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := Replay(dir, key, ReplayOptions{FS: fsys}, func(uint64, byte, []byte) error { return nil }); err != nil {
			t.Fatalf("cut at op %d: replay after reopen: %v", k, err)
		}
		if !cutHappened {
			t.Logf("op %d is past the workload (%d ops)", k, ops)
			break
		}
	}
}

// --- fail-stop ---

func TestFailStop_SyncErrorFailsEveryWaiterOnce(t *testing.T) {
	fsys := newSimFS()
	boom := errors.New("EIO on fsync")
	var failing atomic.Bool
	var hookCalls atomic.Int32
	fsys.syncHook = func(name string) error {
		if failing.Load() {
			hookCalls.Add(1)
			return boom
		}
		return nil
	}
	var calls atomic.Int32
	w, err := Open(Options{Dir: "/sim/wal", Key: testKey(t), SyncMode: SyncAlways, FS: fsys,
		OnFatal: func(err error) {
			if !errors.Is(err, boom) {
				t.Errorf("OnFatal(%v)", err)
			}
			calls.Add(1)
		}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Wait(w.Append(TypeSessionPut, []byte("ok")), false); err != nil {
		t.Fatal(err)
	}
	failing.Store(true)
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seq := w.Append(TypeSessionPut, []byte("x"))
			if err := w.Wait(seq, false); !errors.Is(err, boom) {
				t.Errorf("waiter got %v", err)
			}
		}()
	}
	wg.Wait()
	seq := w.Append(TypeSessionRevoke, []byte("later"))
	for _, durable := range []bool{false, true} {
		if err := w.Wait(seq, durable); !errors.Is(err, boom) {
			t.Fatalf("later Wait(durable=%v): %v", durable, err)
		}
	}
	if err := w.Sync(); !errors.Is(err, boom) {
		t.Fatalf("Sync: %v", err)
	}
	if err := w.Wait(1, true); err != nil {
		t.Fatalf("seq 1 was durable before the failure: %v", err)
	}
	if err := w.Close(); !errors.Is(err, boom) {
		t.Fatalf("Close: %v", err)
	}
	if calls.Load() != 1 {
		t.Fatalf("OnFatal called %d times", calls.Load())
	}
	if hookCalls.Load() != 1 {
		t.Fatalf("fsync attempted %d times after failing; it must never be retried", hookCalls.Load())
	}
}

func TestFailStop_WriteErrorInIntervalAndNoneModes(t *testing.T) {
	for _, mode := range []SyncMode{SyncInterval, SyncNone} {
		t.Run(mode.String(), func(t *testing.T) {
			fsys := newSimFS()
			boom := errors.New("ENOSPC")
			fsys.writeHook = func(name string) error {
				if strings.HasSuffix(name, ".log") {
					return boom
				}
				return nil
			}
			var calls atomic.Int32
			w, err := Open(Options{Dir: "/sim/wal", Key: testKey(t), SyncMode: mode, FS: fsys,
				OnFatal: func(error) { calls.Add(1) }}, 1)
			if err != nil {
				t.Fatal(err)
			}
			seq := w.Append(TypeSessionPut, []byte("x"))
			if err := w.Wait(seq, true); !errors.Is(err, boom) {
				t.Fatalf("durable wait: %v", err)
			}
			seq = w.Append(TypeSessionPut, []byte("y"))
			if err := w.Wait(seq, false); !errors.Is(err, boom) {
				t.Fatalf("later wait: %v", err)
			}
			if err := w.Close(); !errors.Is(err, boom) {
				t.Fatalf("Close: %v", err)
			}
			if calls.Load() != 1 {
				t.Fatalf("OnFatal called %d times", calls.Load())
			}
		})
	}
}

func TestNoneMode_WaitAppliesBackpressureWhenQueueIsFull(t *testing.T) {
	fsys := newSimFS()
	release := make(chan struct{})
	var blocked atomic.Bool
	fsys.writeHook = func(name string) error {
		if strings.HasSuffix(name, ".log") && !blocked.Load() {
			blocked.Store(true)
			fsys.mu.Unlock() // do not hold the FS lock while stalled
			<-release
			fsys.mu.Lock()
		}
		return nil
	}
	w, err := Open(Options{Dir: "/sim/wal", Key: testKey(t), SyncMode: SyncNone, FS: fsys}, 1)
	if err != nil {
		t.Fatal(err)
	}
	first := w.Append(TypeSessionTouch, []byte("a"))
	if err := w.Wait(first, false); err != nil {
		t.Fatal(err)
	}
	for !blocked.Load() {
		time.Sleep(time.Millisecond)
	}
	var last uint64
	for i := 0; i < maxQueueRecords+10; i++ {
		last = w.Append(TypeSessionTouch, []byte("b"))
	}
	done := make(chan error, 1)
	go func() { done <- w.Wait(last, false) }()
	select {
	case err := <-done:
		t.Fatalf("Wait returned (%v) while %d records were queued behind a stalled disk", err, w.Stats().QueueDepth)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := w.Stats(); st.WrittenSeq < last {
		t.Fatalf("released before written: %+v", st)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}
