package crypt

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const hexKey = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

func mustKey(t *testing.T, h string) *MasterKey {
	t.Helper()
	k, err := parseHexKey([]byte(h))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestKeyID_IsFirst8BytesOfDomainSeparatedSHA256(t *testing.T) {
	k := mustKey(t, hexKey)
	h := sha256.Sum256(append([]byte("tokmesh-key-id\x00"), k.key[:]...))
	if id := k.ID(); !bytes.Equal(id[:], h[:8]) {
		t.Fatalf("key id %s", k.ID())
	}
	if strings.Contains(k.String(), hexKey) {
		t.Fatal("String leaks key material")
	}
}

func TestDerive_DiffersBySaltAndPurpose(t *testing.T) {
	k := mustKey(t, hexKey)
	s1, _ := NewSalt()
	s2, _ := NewSalt()
	a := k.Derive(s1[:], PurposeWAL)
	if bytes.Equal(a, k.Derive(s2[:], PurposeWAL)) || bytes.Equal(a, k.Derive(s1[:], PurposeSnapshot)) {
		t.Fatal("derived keys collide")
	}
	if !bytes.Equal(a, k.Derive(s1[:], PurposeWAL)) {
		t.Fatal("derivation not deterministic")
	}
}

func TestAEAD_BothCiphersRoundTripAndRejectTampering(t *testing.T) {
	k := mustKey(t, hexKey)
	salt, _ := NewSalt()
	for _, c := range []CipherID{AES256GCM, ChaCha20Poly1305} {
		a, err := k.FileAEAD(c, salt[:], PurposeWAL)
		if err != nil {
			t.Fatal(err)
		}
		n := Nonce(7)
		ct := a.Seal(nil, n[:], []byte("hello"), []byte("aad"))
		if len(ct) != 5+TagSize {
			t.Fatalf("%s: ciphertext len %d", c, len(ct))
		}
		if pt, err := a.Open(nil, n[:], ct, []byte("aad")); err != nil || string(pt) != "hello" {
			t.Fatalf("%s: open: %v", c, err)
		}
		if _, err := a.Open(nil, n[:], ct, []byte("AAD")); err == nil {
			t.Fatalf("%s: wrong AAD accepted", c)
		}
	}
	if _, err := NewAEAD(9, make([]byte, 32)); !errors.Is(err, ErrUnknownCipher) {
		t.Fatal(err)
	}
}

func TestParseCipher(t *testing.T) {
	for in, want := range map[string]CipherID{"aes-256-gcm": AES256GCM, "chacha20-poly1305": ChaCha20Poly1305, "auto": AutoCipher()} {
		if got, err := ParseCipher(in); err != nil || got != want {
			t.Fatalf("%s: %v %v", in, got, err)
		}
	}
	if _, err := ParseCipher("des"); err == nil {
		t.Fatal("des accepted")
	}
}

func TestNonce_IsFourZeroBytesAndBigEndianCounter(t *testing.T) {
	n := Nonce(0x0102030405060708)
	want := []byte{0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8}
	if !bytes.Equal(n[:], want) {
		t.Fatalf("%x", n)
	}
}

func TestLoadMasterKey_SourcesInOrder(t *testing.T) {
	dir := t.TempDir()
	other := "ff" + hexKey[2:]
	keyFile := filepath.Join(t.TempDir(), "k")
	if err := os.WriteFile(keyFile, []byte(other+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(k string) string {
		if k == EnvKey {
			return hexKey
		}
		return ""
	}
	noenv := func(string) string { return "" }

	k, src, err := LoadMasterKey(LoadOptions{KeyFile: keyFile, DataDir: dir, Getenv: env})
	if err != nil || src != SourceEnv || k.Hex() != hexKey {
		t.Fatalf("env first: %v %v", src, err)
	}
	k, src, err = LoadMasterKey(LoadOptions{KeyFile: keyFile, DataDir: dir, Getenv: noenv})
	if err != nil || src != SourceFile || k.Hex() != other {
		t.Fatalf("key file second: %v %v", src, err)
	}
	if _, _, err = LoadMasterKey(LoadOptions{DataDir: dir, Getenv: noenv}); !errors.Is(err, ErrNoKey) {
		t.Fatalf("no source, no generate: %v", err)
	}
	g, src, err := LoadMasterKey(LoadOptions{DataDir: dir, Getenv: noenv, AllowGenerate: true})
	if err != nil || src != SourceGenerated {
		t.Fatalf("generate: %v %v", src, err)
	}
	st, err := os.Stat(filepath.Join(dir, DefaultKeyFileName))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("generated key file mode: %v %v", st, err)
	}
	k, src, err = LoadMasterKey(LoadOptions{DataDir: dir, Getenv: noenv, AllowGenerate: true})
	if err != nil || src != SourceDataDir || k.ID() != g.ID() {
		t.Fatalf("data dir key reused: %v %v", src, err)
	}
}

func TestReadKeyFile_RejectsUnsafePermissionsAndBadContent(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "k")
	os.WriteFile(p, []byte(hexKey), 0o644)
	os.Chmod(p, 0o644)
	if _, err := ReadKeyFile(p); !errors.Is(err, ErrKeyFilePermissions) {
		t.Fatalf("0644: %v", err)
	}
	os.Chmod(p, 0o600)
	if _, err := ReadKeyFile(p); err != nil {
		t.Fatalf("0600: %v", err)
	}
	os.WriteFile(p, []byte("xyz"), 0o600)
	if _, err := ReadKeyFile(p); !errors.Is(err, ErrBadKeyFormat) {
		t.Fatalf("bad content: %v", err)
	}
	if err := WriteKeyFile(p, mustKey(t, hexKey)); err == nil {
		t.Fatal("WriteKeyFile overwrote an existing file")
	}
}
