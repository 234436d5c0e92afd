package auth

import (
	"crypto/cipher"

	"github.com/yndnr/tokmesh-go/internal/crypt"
)

// The control store's on-disk format (FORMAT.md), exported for
// tokmesh-walctl: it reads the files record by record to report every
// problem (the store stops at the first), and rewrites them under a new key
// — with these encoders, so both write the same bytes.
const (
	ControlHeaderSize    = fileHeaderSize
	ControlFormatVersion = storeFormatVersion
	ControlRecordPrefix  = recordPrefix // len u32 | crc32c u32
	ControlMinRecordLen  = minRecordLen // index + tag
	ControlMaxRecordLen  = maxRecordLen
	ControlKindLog       = kindLog  // keys.log
	ControlKindSnap      = kindSnap // keys.snap
)

// ControlMagic is the magic of a keys.log (ControlKindLog) or keys.snap
// (ControlKindSnap) header.
func ControlMagic(kind byte) [8]byte { return magicFor(kind) }

// EncodeControlHeader encodes a file header; index is the log's base index
// or the snapshot's covered index, createdAt Unix ms.
func EncodeControlHeader(kind byte, c crypt.CipherID, keyID crypt.KeyID, salt [crypt.SaltSize]byte, index uint64, createdAt int64) []byte {
	h := fileHeader{kind: kind, cipher: c, keyID: keyID, salt: salt, index: index, createdAt: createdAt}
	return h.encode()
}

// ControlRecordAAD is the additional data a record of kind is sealed with.
func ControlRecordAAD(kind byte, index uint64) []byte { return recordAAD(kind, index) }

// SealControlRecord frames one sealed payload: len | crc32c | index | sealed.
func SealControlRecord(aead cipher.AEAD, kind byte, index uint64, payload []byte) []byte {
	return sealRecord(aead, kind, index, payload)
}
