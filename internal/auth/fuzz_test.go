package auth

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/yndnr/tokmesh-go/internal/crypt"
)

var updateSeeds = flag.Bool("update-fuzz-seeds", false, "rewrite testdata/fuzz seed corpora")

const seedCred = "tmak-01jh8v9k2c3n4p5q6r7s8t9v0w:tmas_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefg"

func FuzzParseCredential(f *testing.F) {
	f.Add(seedCred)
	f.Add(strings.ToUpper(seedCred[:31]) + seedCred[31:])
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		id, secret, ok := ParseCredential(s)
		if !ok {
			return
		}
		if len(id) != KeyIDLen || len(secret) != SecretLen || id != strings.ToLower(s[:KeyIDLen]) || secret != s[KeyIDLen+1:] {
			t.Fatalf("%q parsed as %q %q", s, id, secret)
		}
		if id2, ok := ParseKeyID(id); !ok || id2 != id {
			t.Fatal("parsed key id does not re-parse")
		}
		if _, _, ok := ParseCredential(id + ":" + secret); !ok {
			t.Fatal("normalised credential does not re-parse")
		}
	})
}

// seedCommands are valid commands of every type.
func seedCommands() []Command {
	k := Key{ID: "tmak-01jh8v9k2c3n4p5q6r7s8t9v0w", Role: RoleIssuer, Description: "seed", Status: StatusActive,
		AllowList: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::1/128")},
		RateLimit: 1000, CreatedAt: 1767225600000, CreatedBy: LocalAdminID, ExpiresAt: 1798761600000,
		SecretHash: "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"}
	e := k
	e.ID, e.Role, e.CreatedBy = "tmak-01jh8v9k2c3n4p5q6r7s8t9v0x", RoleAdmin, LocalAdminID
	return []Command{
		{Type: CmdCreate, Key: k},
		{Type: CmdEmergencyCreate, Key: e},
		{Type: CmdSetStatus, ID: k.ID, Status: StatusDisabled},
		{Type: CmdRotate, ID: k.ID, SecretHash: k.SecretHash, GraceUntil: 1767229200000},
		{Type: CmdTouch, Touches: []Touch{{k.ID, 1767225660000}}},
	}
}

func FuzzDecodeCommand(f *testing.F) {
	for _, c := range seedCommands() {
		f.Add(EncodeCommand(&c))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCommand(b)
		if err != nil {
			return
		}
		// Decoding is stable: what re-encodes decodes to the same command.
		c2, err := DecodeCommand(EncodeCommand(&c))
		if err != nil || !reflect.DeepEqual(c, c2) {
			t.Fatalf("re-decode: %v\n%#v\n%#v", err, c, c2)
		}
		// Applying a decoded command never panics.
		s := NewState()
		s.Apply(&c)
	})
}

// fuzzLogKey is the fixed key of FuzzReadLog; its seeds are sealed with it.
func fuzzLogKey(t testing.TB) *crypt.MasterKey { return testMasterKey(t, 7) }

// FuzzReadLog feeds arbitrary bytes to the keys.log decoder (header,
// records, torn-tail rule, command decoding, replay): it must load a valid
// prefix or fail with an error, never panic.
func FuzzReadLog(f *testing.F) {
	for _, seed := range logSeeds(f) {
		f.Add(seed)
	}
	mk := fuzzLogKey(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		s := &Store{opts: StoreOptions{Dir: "fuzz", MasterKey: mk}, state: NewState()}
		_, valid, err := s.replayLog(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrKeyMismatch) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if valid < fileHeaderSize || valid > len(b) || int64(len(b)-valid) != s.recovery.TornTailBytes {
			t.Fatalf("valid prefix %d of %d, torn %d", valid, len(b), s.recovery.TornTailBytes)
		}
	})
}

// logSeeds builds logs sealed under fuzzLogKey: empty, with records, torn.
func logSeeds(t testing.TB) [][]byte {
	mk := fuzzLogKey(t)
	var salt [crypt.SaltSize]byte
	h := fileHeader{kind: kindLog, cipher: crypt.ChaCha20Poly1305, keyID: mk.ID(), salt: salt}
	aead, err := mk.FileAEAD(h.cipher, salt[:], crypt.PurposeControl)
	if err != nil {
		t.Fatal(err)
	}
	empty := h.encode()
	full := bytes.Clone(empty)
	for i, c := range seedCommands() {
		full = append(full, sealRecord(aead, kindLog, uint64(i+1), EncodeCommand(&c))...)
	}
	return [][]byte{empty, full, full[:len(full)-7]}
}

// TestFuzzSeedCorpus keeps testdata/fuzz in sync (-update-fuzz-seeds
// rewrites it) and checks every committed seed still runs.
func TestFuzzSeedCorpus(t *testing.T) {
	seeds := map[string][]string{
		"FuzzParseCredential": {fuzzString(seedCred), fuzzString(seedCred[:79] + "!"), fuzzString(strings.ToUpper(seedCred))},
	}
	for _, c := range seedCommands() {
		seeds["FuzzDecodeCommand"] = append(seeds["FuzzDecodeCommand"], fuzzBytes(EncodeCommand(&c)))
	}
	for _, b := range logSeeds(t) {
		seeds["FuzzReadLog"] = append(seeds["FuzzReadLog"], fuzzBytes(b))
	}
	for name, list := range seeds {
		dir := filepath.Join("testdata", "fuzz", name)
		for i, body := range list {
			path := filepath.Join(dir, "seed-"+strconv.Itoa(i))
			if *updateSeeds {
				os.MkdirAll(dir, 0o755)
				if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(path)
			if err != nil || string(got) != body {
				t.Fatalf("%s is missing or stale; run go test ./internal/auth/ -run TestFuzzSeedCorpus -update-fuzz-seeds", path)
			}
		}
	}
}

func TestFuzzLogSeeds_LoadAsExpected(t *testing.T) {
	for i, want := range []int{0, 2, 2} { // empty; full; torn final record dropped
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, LogFileName), logSeeds(t)[i], 0o600)
		s, err := OpenStore(StoreOptions{Dir: dir, MasterKey: fuzzLogKey(t), ReadOnly: true})
		if err != nil {
			t.Fatalf("seed %d: %v", i, err)
		}
		if s.View().Len() != want {
			t.Fatalf("seed %d: %d keys", i, s.View().Len())
		}
		s.Close()
	}
}

func fuzzString(s string) string { return "go test fuzz v1\nstring(" + strconv.Quote(s) + ")\n" }
func fuzzBytes(b []byte) string {
	return fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(b)))
}
