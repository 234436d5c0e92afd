// Package crypt holds TokMesh's at-rest cryptography: the master key and its
// ID, the AEAD cipher choice, HKDF sub-key derivation and counter nonces.
//
// Invariants: every encrypted file records its cipher ID, key ID and a random
// per-file salt; the per-file key is HKDF-SHA256(master, salt,
// "tokmesh/<purpose>/v1"); nonces are 4 zero bytes followed by a 64-bit
// big-endian counter that is never reused under one per-file key.
package crypt

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/sys/cpu"
)

// CipherID identifies the AEAD used for a file. It is stored in every file header.
type CipherID uint8

const (
	// AES256GCM is AES-256 in Galois/Counter Mode.
	AES256GCM CipherID = 1
	// ChaCha20Poly1305 is the IETF ChaCha20-Poly1305 construction.
	ChaCha20Poly1305 CipherID = 2
)

// Purposes for HKDF derivation (04-security §11).
const (
	PurposeWAL      = "wal"
	PurposeSnapshot = "snapshot"
	PurposeBackup   = "backup"
	PurposeControl  = "control"
)

// KeySize is the size of the master key and of every derived key.
const KeySize = 32

// SaltSize is the size of the per-file random salt.
const SaltSize = 32

// NonceSize is the nonce size of both supported AEADs.
const NonceSize = 12

// TagSize is the authentication tag size of both supported AEADs.
const TagSize = 16

// ErrUnknownCipher is returned for a cipher ID this build does not know.
var ErrUnknownCipher = errors.New("crypt: unknown cipher id")

// String returns the configuration name of the cipher.
func (c CipherID) String() string {
	switch c {
	case AES256GCM:
		return "aes-256-gcm"
	case ChaCha20Poly1305:
		return "chacha20-poly1305"
	}
	return fmt.Sprintf("cipher(%d)", uint8(c))
}

// ParseCipher maps a configuration value (auto, aes-256-gcm,
// chacha20-poly1305) to a cipher ID; "auto" and "" pick by CPU features.
func ParseCipher(name string) (CipherID, error) {
	switch name {
	case "", "auto":
		return AutoCipher(), nil
	case "aes-256-gcm":
		return AES256GCM, nil
	case "chacha20-poly1305":
		return ChaCha20Poly1305, nil
	}
	return 0, fmt.Errorf("%w: %q", ErrUnknownCipher, name)
}

// AutoCipher picks AES-256-GCM when the CPU accelerates both AES and
// carry-less multiplication, otherwise ChaCha20-Poly1305.
func AutoCipher() CipherID {
	switch runtime.GOARCH {
	case "amd64":
		if cpu.X86.HasAES && cpu.X86.HasPCLMULQDQ {
			return AES256GCM
		}
	case "arm64":
		if cpu.ARM64.HasAES && cpu.ARM64.HasPMULL {
			return AES256GCM
		}
	case "s390x":
		if cpu.S390X.HasAES && cpu.S390X.HasGHASH {
			return AES256GCM
		}
	}
	return ChaCha20Poly1305
}

// KeyID is the public 8-byte identifier of a master key.
type KeyID [8]byte

// String returns the lower-case hex form that is logged and shown by tools.
func (id KeyID) String() string { return hex.EncodeToString(id[:]) }

// MasterKey is the 32-byte root of every at-rest key.
type MasterKey struct {
	key [KeySize]byte
	id  KeyID
}

// NewMasterKey wraps raw key bytes; b must be exactly 32 bytes.
func NewMasterKey(b []byte) (*MasterKey, error) {
	if len(b) != KeySize {
		return nil, fmt.Errorf("crypt: master key must be %d bytes, got %d", KeySize, len(b))
	}
	k := &MasterKey{}
	copy(k.key[:], b)
	h := sha256.New()
	h.Write([]byte("tokmesh-key-id\x00"))
	h.Write(k.key[:])
	copy(k.id[:], h.Sum(nil))
	return k, nil
}

// GenerateMasterKey returns a fresh random master key.
func GenerateMasterKey() (*MasterKey, error) {
	var b [KeySize]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	return NewMasterKey(b[:])
}

// ID returns the key's public identifier.
func (k *MasterKey) ID() KeyID { return k.id }

// Hex returns the 64-hex-character encoding used in key files. Only the key
// file writer may call it.
func (k *MasterKey) Hex() string { return hex.EncodeToString(k.key[:]) }

// String never reveals key material.
func (k *MasterKey) String() string { return "MasterKey(" + k.id.String() + ")" }

// Derive returns the per-file key HKDF-SHA256(master, salt, "tokmesh/<purpose>/v1").
func (k *MasterKey) Derive(salt []byte, purpose string) []byte {
	out, err := hkdf.Key(sha256.New, k.key[:], salt, "tokmesh/"+purpose+"/v1", KeySize)
	if err != nil {
		// hkdf.Key only fails for lengths beyond 255*32 bytes.
		panic("crypt: hkdf: " + err.Error())
	}
	return out
}

// NewAEAD builds the AEAD for a cipher ID and a 32-byte derived key.
func NewAEAD(c CipherID, key []byte) (cipher.AEAD, error) {
	switch c {
	case AES256GCM:
		b, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		return cipher.NewGCM(b)
	case ChaCha20Poly1305:
		return chacha20poly1305.New(key)
	}
	return nil, fmt.Errorf("%w: %d", ErrUnknownCipher, uint8(c))
}

// FileAEAD derives the per-file key for purpose and salt and returns its AEAD.
func (k *MasterKey) FileAEAD(c CipherID, salt []byte, purpose string) (cipher.AEAD, error) {
	return NewAEAD(c, k.Derive(salt, purpose))
}

// Nonce returns the counter nonce: 4 zero bytes followed by counter, big-endian.
func Nonce(counter uint64) [NonceSize]byte {
	var n [NonceSize]byte
	binary.BigEndian.PutUint64(n[4:], counter)
	return n
}

// NewSalt returns SaltSize random bytes.
func NewSalt() ([SaltSize]byte, error) {
	var s [SaltSize]byte
	_, err := rand.Read(s[:])
	return s, err
}
