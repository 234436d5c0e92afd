package walctl

// The control store (<data-dir>/control) is internal/auth's standalone key
// store: keys.snap (the key table as of an index) and keys.log (the commands
// after it), byte layout in internal/auth/FORMAT.md, version 1.
//
// auth.OpenStore loads the whole store or stops at the first defect, and
// auth.Store.Rekey replaces both files with no way to finish the job after a
// crash between them. So walctl reads the files itself, record by record:
// verify reports every defect of every file, inspect summarizes the
// plaintext framing without the key, and rekey re-encrypts each file on its
// own, skipping files already under the new key, so running it again after
// an interruption finishes the job. What only the decoded content can tell
// (commands decode and apply, the state matches its index) is left to
// auth.OpenStore in read-only mode: the code the server runs at startup.

import (
	"bytes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/yndnr/tokmesh-go/internal/auth"
	"github.com/yndnr/tokmesh-go/internal/crypt"
	"github.com/yndnr/tokmesh-go/internal/datadir"
	"github.com/yndnr/tokmesh-go/internal/wal"
)

// Control-store file layout (internal/auth/FORMAT.md; auth's encoders).
const (
	ctlHeaderSize   = auth.ControlHeaderSize
	ctlVersion      = auth.ControlFormatVersion
	ctlRecordPrefix = auth.ControlRecordPrefix
	ctlMinRecordLen = auth.ControlMinRecordLen
	ctlMaxRecordLen = auth.ControlMaxRecordLen
	ctlKindLog      = auth.ControlKindLog
	ctlKindSnap     = auth.ControlKindSnap
	ctlTempSuffix   = ".tmp" // auth and datadir.WriteFileAtomic write <name>.tmp first
	ctlLogName      = auth.LogFileName
	ctlSnapName     = auth.SnapshotFileName
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ctlHeader is the plaintext header of keys.snap and keys.log.
type ctlHeader struct {
	kind      byte
	cipher    crypt.CipherID
	keyID     crypt.KeyID
	salt      [crypt.SaltSize]byte
	index     uint64 // log: base (last index before its first record); snapshot: covered index
	createdAt int64  // Unix ms
}

func (h *ctlHeader) encode() []byte {
	return auth.EncodeControlHeader(h.kind, h.cipher, h.keyID, h.salt, h.index, h.createdAt)
}

// decodeCtlHeader checks magic, CRC, version, flags and cipher (not the key
// ID). On failure it returns the problem kind and a message.
func decodeCtlHeader(b []byte, kind byte) (h ctlHeader, problem, msg string) {
	switch {
	case len(b) < ctlHeaderSize:
		return h, kindTruncated, fmt.Sprintf("header has %d of %d bytes", len(b), ctlHeaderSize)
	case !bytes.Equal(b[0:8], ctlMagicOf(kind)):
		return h, kindBadMagic, fmt.Sprintf("bad magic %q", b[0:8])
	case crc32.Checksum(b[:68], castagnoli) != binary.BigEndian.Uint32(b[68:72]):
		return h, kindHeaderChecksum, "header CRC mismatch"
	case binary.BigEndian.Uint16(b[8:10]) != ctlVersion:
		return h, kindFormatVersion, fmt.Sprintf("format version %d (this build reads %d)", binary.BigEndian.Uint16(b[8:10]), ctlVersion)
	case b[11] != 0:
		return h, kindFormatVersion, fmt.Sprintf("unknown header flags %#x", b[11])
	}
	h.kind = kind
	h.cipher = crypt.CipherID(b[10])
	if h.cipher != crypt.AES256GCM && h.cipher != crypt.ChaCha20Poly1305 {
		return h, kindBadHeader, fmt.Sprintf("unknown cipher id %d", b[10])
	}
	copy(h.keyID[:], b[12:20])
	copy(h.salt[:], b[20:52])
	h.index = binary.BigEndian.Uint64(b[52:60])
	h.createdAt = int64(binary.BigEndian.Uint64(b[60:68]))
	return h, "", ""
}

func ctlMagicOf(kind byte) []byte { m := auth.ControlMagic(kind); return m[:] }

// ctlRecordStatus classifies a record the way auth's loader does.
type ctlRecordStatus int

const (
	ctlOK      ctlRecordStatus = iota
	ctlTorn                    // an interrupted final append: the next start drops it (log only)
	ctlCorrupt                 // anything else
)

// readCtlRecord reads the record at the start of b (which runs to the end of
// the file). With aead it also authenticates and decrypts the record.
func readCtlRecord(b []byte, aead cipher.AEAD, kind byte) (index uint64, plain []byte, size int, st ctlRecordStatus, problem, msg string) {
	if len(b) < ctlRecordPrefix {
		return 0, nil, 0, ctlTorn, kindTruncated, fmt.Sprintf("%d bytes left, a record prefix needs %d", len(b), ctlRecordPrefix)
	}
	l := int(binary.BigEndian.Uint32(b[0:4]))
	if l < ctlMinRecordLen || l > ctlMaxRecordLen {
		if !slices.ContainsFunc(b, func(c byte) bool { return c != 0 }) {
			return 0, nil, 0, ctlTorn, kindBadLength, "zero-filled tail"
		}
		return 0, nil, 0, ctlCorrupt, kindBadLength, fmt.Sprintf("record length %d outside %d..%d", l, ctlMinRecordLen, ctlMaxRecordLen)
	}
	if ctlRecordPrefix+l > len(b) {
		return 0, nil, 0, ctlTorn, kindTruncated, fmt.Sprintf("record of %d bytes runs past the end of the file", l)
	}
	size = ctlRecordPrefix + l
	body := b[ctlRecordPrefix:size]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(b[4:8]) {
		if size == len(b) {
			return 0, nil, 0, ctlTorn, kindCRC, "CRC mismatch in the final record"
		}
		return 0, nil, 0, ctlCorrupt, kindCRC, "record CRC mismatch"
	}
	index = binary.BigEndian.Uint64(body[:8])
	if aead != nil {
		n := crypt.Nonce(index)
		p, err := aead.Open(nil, n[:], body[8:], auth.ControlRecordAAD(kind, index))
		if err != nil {
			return index, nil, size, ctlCorrupt, kindTag, fmt.Sprintf("record %d: authentication tag mismatch", index)
		}
		plain = p
	}
	return index, plain, size, ctlOK, "", ""
}

// nextCtlRecord returns the offset of the first record at or after from that
// checks out (CRC, and tag with aead), or -1.
func nextCtlRecord(data []byte, from int, aead cipher.AEAD, kind byte) int {
	for off := from; off+ctlRecordPrefix+ctlMinRecordLen <= len(data); off++ {
		if _, _, _, st, _, _ := readCtlRecord(data[off:], aead, kind); st == ctlOK {
			return off
		}
	}
	return -1
}

// ctlRecord is one record that checked out.
type ctlRecord struct {
	off   int64
	index uint64
	plain []byte // nil unless the record was decrypted
}

// ctlFile is what scanCtlFile found in one control-store file.
type ctlFile struct {
	path     string
	kind     byte
	size     int64
	hdr      ctlHeader
	hdrOK    bool // the header decoded (its key ID may still be another key's)
	records  []ctlRecord
	problems []wal.Problem
	torn     *wal.Problem // keys.log only: a torn tail the next start drops
}

// lastIndex is the index of the last good record, or the header index.
func (f *ctlFile) lastIndex() uint64 {
	if n := len(f.records); n > 0 {
		return f.records[n-1].index
	}
	return f.hdr.index
}

func (f *ctlFile) problem(off int64, index uint64, kind, format string, args ...any) {
	f.problems = append(f.problems, wal.Problem{File: f.path, Offset: off, Seq: index, Kind: kind, Message: fmt.Sprintf(format, args...)})
}

// scanCtlFile reads one control-store file. With a key whose ID matches the
// header it authenticates and decrypts every record; otherwise it checks
// the framing and CRCs only (and, with another key, reports the mismatch).
// err is for I/O failures only.
func scanCtlFile(path string, kind byte, key *crypt.MasterKey) (*ctlFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f := &ctlFile{path: path, kind: kind, size: int64(len(data))}
	h, problem, msg := decodeCtlHeader(data, kind)
	if problem != "" {
		f.problem(0, 0, problem, "%s", msg)
		return f, nil
	}
	f.hdr, f.hdrOK = h, true
	var aead cipher.AEAD
	if key != nil {
		if h.keyID != key.ID() {
			f.problem(0, 0, kindKeyMismatch, "written under master key %s, the key in use is %s (use the right --key-file or `tokmesh-walctl rekey`)", h.keyID, key.ID())
		} else if aead, err = key.FileAEAD(h.cipher, h.salt[:], crypt.PurposeControl); err != nil {
			return nil, err
		}
	}
	if kind == ctlKindSnap {
		f.scanSnapshot(data, aead)
	} else {
		f.scanLog(data, aead)
	}
	return f, nil
}

// scanSnapshot expects exactly one record, sealed at the covered index.
func (f *ctlFile) scanSnapshot(data []byte, aead cipher.AEAD) {
	idx, plain, size, st, problem, msg := readCtlRecord(data[ctlHeaderSize:], aead, ctlKindSnap)
	if st != ctlOK {
		f.problem(ctlHeaderSize, f.hdr.index, problem, "%s", msg)
		return
	}
	if idx != f.hdr.index {
		f.problem(ctlHeaderSize, idx, kindIndexGap, "the record has index %d, the header covers %d", idx, f.hdr.index)
	}
	f.records = append(f.records, ctlRecord{off: ctlHeaderSize, index: idx, plain: plain})
	if end := ctlHeaderSize + size; end != len(data) {
		f.problem(int64(end), idx, kindTrailingData, "%d bytes after the snapshot record", len(data)-end)
	}
}

// scanLog walks every record; after a bad one it resumes at the next record
// that checks out, so each defect is reported.
func (f *ctlFile) scanLog(data []byte, aead cipher.AEAD) {
	next := f.hdr.index + 1
	for off := ctlHeaderSize; off < len(data); {
		idx, plain, size, st, problem, msg := readCtlRecord(data[off:], aead, ctlKindLog)
		switch st {
		case ctlTorn:
			f.torn = &wal.Problem{File: f.path, Offset: int64(off), Seq: next, Kind: kindTornTail,
				Message: fmt.Sprintf("torn tail (%s): the next start drops %d bytes from offset %d", msg, len(data)-off, off)}
			return
		case ctlCorrupt:
			resume := nextCtlRecord(data, off+1, aead, ctlKindLog)
			if resume < 0 {
				f.problem(int64(off), next, problem, "%s; no valid record follows (%d bytes)", msg, len(data)-off)
				return
			}
			f.problem(int64(off), next, problem, "%s; next valid record at offset %d", msg, resume)
			// Count on from the record found, as wal.Verify does, so the
			// skipped damage is not reported again as an index gap.
			next, _, _, _, _, _ = readCtlRecord(data[resume:], aead, ctlKindLog)
			off = resume
			continue
		}
		if idx != next {
			f.problem(int64(off), idx, kindIndexGap, "found index %d, expected %d", idx, next)
		}
		f.records = append(f.records, ctlRecord{off: int64(off), index: idx, plain: plain})
		next = idx + 1
		off += size
	}
}

// ctlDir lists the control store: keys.snap and keys.log when present,
// temp files left by an interrupted write, and anything else.
type ctlDir struct {
	dir       string
	snap, log string // paths, "" when absent
	temps     []string
	unknown   []string
}

func listCtlDir(dataDir string) (ctlDir, error) {
	d := ctlDir{dir: filepath.Join(dataDir, datadir.ControlDir)}
	entries, err := os.ReadDir(d.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return d, nil
	}
	if err != nil {
		return d, err
	}
	for _, e := range entries {
		p := filepath.Join(d.dir, e.Name())
		switch {
		case e.Name() == ctlSnapName && e.Type().IsRegular():
			d.snap = p
		case e.Name() == ctlLogName && e.Type().IsRegular():
			d.log = p
		case (e.Name() == ctlSnapName+ctlTempSuffix || e.Name() == ctlLogName+ctlTempSuffix) && e.Type().IsRegular():
			d.temps = append(d.temps, p)
		default:
			d.unknown = append(d.unknown, p)
		}
	}
	return d, nil
}

// ctlPath is one control-store file and its kind.
type ctlPath struct {
	path string
	kind byte
}

// files returns the store's files, snapshot first.
func (d *ctlDir) files() []ctlPath {
	var out []ctlPath
	if d.snap != "" {
		out = append(out, ctlPath{d.snap, ctlKindSnap})
	}
	if d.log != "" {
		out = append(out, ctlPath{d.log, ctlKindLog})
	}
	return out
}

// crossCheck reports what is wrong between the two files (auth's load rules).
func crossCheckCtl(d *ctlDir, snap, log *ctlFile) []wal.Problem {
	var out []wal.Problem
	if snap != nil && log == nil {
		return append(out, wal.Problem{File: filepath.Join(d.dir, ctlLogName), Kind: kindMissingFile,
			Message: fmt.Sprintf("%s is missing but %s exists: the commands after the snapshot are lost", ctlLogName, ctlSnapName)})
	}
	if log == nil || !log.hdrOK || (snap != nil && !snap.hdrOK) {
		return out
	}
	covered := uint64(0)
	if snap != nil {
		covered = snap.hdr.index
	}
	if log.hdr.index > covered {
		what := fmt.Sprintf("the snapshot covers only %d", covered)
		if snap == nil {
			what = "there is no snapshot"
		}
		out = append(out, wal.Problem{File: log.path, Seq: log.hdr.index + 1, Kind: kindIndexGap,
			Message: fmt.Sprintf("the log starts after index %d but %s", log.hdr.index, what)})
	} else if len(log.problems) == 0 && log.lastIndex() < covered {
		out = append(out, wal.Problem{File: log.path, Offset: log.size, Seq: log.lastIndex() + 1, Kind: kindIndexGap,
			Message: fmt.Sprintf("the log ends at index %d before the snapshot's %d: a newer log was lost", log.lastIndex(), covered)})
	}
	return out
}

// openCtlStore loads the store read-only with the server's code. A defect is
// returned as a problem; err is for other failures (I/O).
func openCtlStore(dir string, key *crypt.MasterKey) (*auth.View, *wal.Problem, error) {
	st, err := auth.OpenStore(auth.StoreOptions{Dir: dir, MasterKey: key, ReadOnly: true})
	if err != nil {
		var ce *auth.CorruptError
		if !errors.As(err, &ce) {
			return nil, nil, err
		}
		p := &wal.Problem{File: ce.File, Offset: ce.Offset, Kind: kindBadContent, Message: ce.Err.Error()}
		if errors.Is(err, auth.ErrKeyMismatch) {
			p.Kind = kindKeyMismatch
		}
		return nil, p, nil
	}
	defer st.Close()
	return st.View(), nil, nil
}

// verifyControl checks every control-store file with key: header, every
// record's CRC and tag, index continuity, the two files against each other
// and, when all that is clean, the content through auth.OpenStore. A torn
// tail of keys.log is a warning (the next start drops it).
func verifyControl(dataDir string, key *crypt.MasterKey) (problems, warnings []wal.Problem, files int, err error) {
	d, err := listCtlDir(dataDir)
	if err != nil {
		return nil, nil, 0, err
	}
	var snap, log *ctlFile
	for _, f := range d.files() {
		cf, err := scanCtlFile(f.path, f.kind, key)
		if err != nil {
			return nil, nil, 0, err
		}
		problems = append(problems, cf.problems...)
		if cf.torn != nil {
			warnings = append(warnings, *cf.torn)
		}
		if f.kind == ctlKindSnap {
			snap = cf
		} else {
			log = cf
		}
		files++
	}
	for _, p := range d.unknown {
		warnings = append(warnings, wal.Problem{File: p, Kind: kindUnknownFile,
			Message: "not a control store file this build knows; not checked (and not re-encrypted by rekey)"})
	}
	problems = append(problems, crossCheckCtl(&d, snap, log)...)
	if len(problems) == 0 && files > 0 {
		_, p, err := openCtlStore(d.dir, key)
		if err != nil {
			return nil, nil, 0, err
		}
		if p != nil {
			problems = append(problems, *p)
		}
	}
	return problems, warnings, files, nil
}

// ---- inspect ----------------------------------------------------------------

type controlFileJSON struct {
	File       string `json:"file"`
	Kind       string `json:"kind"`                  // "snapshot" or "log"
	Index      uint64 `json:"index"`                 // snapshot: covered index; log: base index
	FirstIndex uint64 `json:"first_index,omitempty"` // log: first record's index
	LastIndex  uint64 `json:"last_index"`            // last good record's index (log) or the covered index
	Records    int    `json:"records"`
	Bytes      int64  `json:"bytes"`
	Cipher     string `json:"cipher,omitempty"`
	KeyID      string `json:"key_id,omitempty"`
	CreatedAt  string `json:"created_at,omitempty"`
	Error      string `json:"error,omitempty"`
}

type controlKeysJSON struct {
	Total    int `json:"total"`
	Active   int `json:"active"`
	Disabled int `json:"disabled"`
}

type controlJSON struct {
	Files []controlFileJSON `json:"files"`
	// OtherFiles are files in control/ that are not part of the store.
	OtherFiles []string `json:"other_files,omitempty"`
	// SnapshotIndex is the index keys.snap covers; LastIndex the last
	// command in keys.log (commands are numbered from 1).
	SnapshotIndex uint64 `json:"snapshot_index"`
	LastIndex     uint64 `json:"last_index"`
	LogRecords    int    `json:"log_records"`
	// APIKeys needs the master key; absent without it.
	APIKeys *controlKeysJSON `json:"api_keys,omitempty"`
	Error   string           `json:"error,omitempty"`
}

// inspectControl summarizes the control store from its plaintext framing
// (no key needed); with a key it also counts the API keys.
func inspectControl(dataDir string, key *crypt.MasterKey) (controlJSON, error) {
	out := controlJSON{Files: []controlFileJSON{}}
	d, err := listCtlDir(dataDir)
	if err != nil {
		return out, err
	}
	clean := true
	for _, f := range d.files() {
		cf, err := scanCtlFile(f.path, f.kind, nil)
		if err != nil {
			return out, err
		}
		fj := controlFileJSON{File: f.path, Kind: "log", Bytes: cf.size, Records: len(cf.records)}
		if f.kind == ctlKindSnap {
			fj.Kind = "snapshot"
		}
		if cf.hdrOK {
			fj.Index, fj.LastIndex = cf.hdr.index, cf.lastIndex()
			fj.Cipher, fj.KeyID, fj.CreatedAt = cf.hdr.cipher.String(), cf.hdr.keyID.String(), msTime(cf.hdr.createdAt)
			if f.kind == ctlKindLog && len(cf.records) > 0 {
				fj.FirstIndex = cf.records[0].index
			}
			if key != nil && cf.hdr.keyID != key.ID() {
				clean = false
				out.Error = fmt.Sprintf("not under the loaded key %s: API keys not counted", key.ID())
			}
		}
		var notes []string
		for _, p := range cf.problems {
			notes = append(notes, fmt.Sprintf("%s at offset %d (run verify)", p.Kind, p.Offset))
		}
		if cf.torn != nil {
			notes = append(notes, fmt.Sprintf("torn tail of %d bytes at offset %d (dropped at the next start)", cf.size-cf.torn.Offset, cf.torn.Offset))
		}
		fj.Error = strings.Join(notes, "; ")
		clean = clean && len(cf.problems) == 0
		if f.kind == ctlKindSnap {
			out.SnapshotIndex = fj.Index
		} else {
			out.LogRecords = len(cf.records)
		}
		out.LastIndex = max(out.LastIndex, fj.LastIndex)
		out.Files = append(out.Files, fj)
	}
	out.OtherFiles = append(out.OtherFiles, d.unknown...)
	if key != nil && clean && len(out.Files) > 0 {
		v, p, err := openCtlStore(d.dir, key)
		switch {
		case err != nil:
			out.Error = err.Error()
		case p != nil:
			out.Error = p.Kind + ": " + p.Message
		default:
			k := controlKeysJSON{}
			for _, key := range v.Keys() {
				k.Total++
				if key.Status == auth.StatusDisabled {
					k.Disabled++
				} else {
					k.Active++
				}
			}
			out.APIKeys = &k
		}
	}
	return out, nil
}

// ---- rekey ------------------------------------------------------------------

// rekeyControl re-encrypts keys.snap and keys.log under newKey, one file at a
// time: each file not yet under newKey is decrypted with oldKey, sealed again
// with a fresh salt (same indexes, header index and created_at; a torn log
// tail is dropped, as the next start would) and written to <name>.tmp,
// fsynced, renamed over the original and the directory fsynced. Files under
// newKey's ID are skipped, so an interrupted rekey is finished by running it
// again. Nothing is written unless every file to re-encrypt checks out, and
// the result is loaded with the new key through auth.OpenStore.
func rekeyControl(dataDir string, oldKey, newKey *crypt.MasterKey) (rewritten, skipped int, err error) {
	d, err := listCtlDir(dataDir)
	if err != nil {
		return 0, 0, exitf(ExitIO, "control store: %v", err)
	}
	if len(d.unknown) > 0 {
		return 0, 0, exitf(ExitProblems, "control store: %s is not a file this build can re-encrypt; nothing was changed (move it aside and run rekey again)", strings.Join(d.unknown, ", "))
	}
	var pending []*ctlFile
	for _, f := range d.files() {
		cf, err := scanCtlFile(f.path, f.kind, nil)
		if err != nil {
			return 0, 0, exitf(ExitIO, "control store: %v", err)
		}
		if !cf.hdrOK {
			p := cf.problems[0]
			return 0, 0, exitf(ExitProblems, "control store %s: %s: %s; nothing was re-encrypted (run `tokmesh-walctl verify`)", p.File, p.Kind, p.Message)
		}
		switch h := cf.hdr; h.keyID {
		case newKey.ID():
			skipped++
			continue
		case oldKey.ID():
		default:
			return 0, 0, exitf(ExitNoKey, "control store %s is under master key %s: neither the current key %s nor the new key %s", f.path, h.keyID, oldKey.ID(), newKey.ID())
		}
		cf, err = scanCtlFile(f.path, f.kind, oldKey)
		if err != nil {
			return 0, 0, exitf(ExitIO, "control store: %v", err)
		}
		if len(cf.problems) > 0 {
			p := cf.problems[0]
			return 0, 0, exitf(ExitProblems, "control store %s: %s at offset %d: %s; nothing was re-encrypted (run `tokmesh-walctl verify`)", p.File, p.Kind, p.Offset, p.Message)
		}
		pending = append(pending, cf)
	}
	if len(pending) == 0 {
		return 0, skipped, nil
	}
	if skipped == 0 {
		// Not a resumed run: the store must load with the old key before
		// anything changes. (A resumed run is checked under the new key below.)
		if _, p, err := openCtlStore(d.dir, oldKey); err != nil {
			return 0, 0, exitf(ExitIO, "control store: %v", err)
		} else if p != nil {
			return 0, 0, exitf(ExitProblems, "control store %s: %s at offset %d: %s; nothing was re-encrypted", p.File, p.Kind, p.Offset, p.Message)
		}
	}
	for _, t := range d.temps {
		// A leftover of an interrupted write, possibly under the old key.
		if err := os.Remove(t); err != nil {
			return 0, skipped, exitf(ExitIO, "control store: %v", err)
		}
	}
	for _, cf := range pending {
		data, err := encodeCtlFile(cf, newKey)
		if err != nil {
			return rewritten, skipped, exitf(ExitIO, "control store %s: %v", cf.path, err)
		}
		if err := datadir.WriteFileAtomic(cf.path, data, 0o600); err != nil {
			return rewritten, skipped, exitf(ExitIO, "control store: replace %s: %v", cf.path, err)
		}
		rewritten++
		if afterControlFileRekeyed != nil {
			if err := afterControlFileRekeyed(cf.path); err != nil {
				return rewritten, skipped, exitf(ExitIO, "control store: %v", err)
			}
		}
	}
	if _, p, err := openCtlStore(d.dir, newKey); err != nil {
		return rewritten, skipped, exitf(ExitIO, "control store: %v", err)
	} else if p != nil {
		return rewritten, skipped, exitf(ExitProblems, "control store re-encrypted, but it does not load under the new key: %s at offset %d: %s", p.Kind, p.Offset, p.Message)
	}
	return rewritten, skipped, nil
}

// afterControlFileRekeyed, when set (tests), runs after each control store
// file is replaced; an error interrupts the rekey there.
var afterControlFileRekeyed func(path string) error

// encodeCtlFile seals cf's records again under key with a fresh salt.
func encodeCtlFile(cf *ctlFile, key *crypt.MasterKey) ([]byte, error) {
	salt, err := crypt.NewSalt()
	if err != nil {
		return nil, err
	}
	h := cf.hdr
	h.keyID, h.salt = key.ID(), salt
	aead, err := key.FileAEAD(h.cipher, salt[:], crypt.PurposeControl)
	if err != nil {
		return nil, err
	}
	out := h.encode()
	for _, r := range cf.records {
		if r.plain == nil {
			return nil, fmt.Errorf("record %d was not decrypted", r.index)
		}
		out = append(out, auth.SealControlRecord(aead, cf.kind, r.index, r.plain)...)
	}
	return out, nil
}
