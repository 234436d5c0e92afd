package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"
)

// Params are Argon2id cost parameters for new hashes
// (security.auth.argon2.*). Verification reads them from the PHC string.
type Params struct {
	// Memory in KiB (8192–1048576 in config; ≥ 8·Parallelism here so tests
	// may use tiny values).
	Memory uint32
	// Iterations (time cost), 1–10.
	Iterations uint32
	// Parallelism (lanes), 1–16.
	Parallelism uint8
}

// DefaultParams are the 04-security §1 defaults: m=16384 KiB, t=2, p=2.
var DefaultParams = Params{Memory: 16384, Iterations: 2, Parallelism: 2}

const (
	saltLen     = 16
	hashLen     = 32
	maxMemory   = 1 << 20 // KiB, the config maximum
	maxIter     = 10
	maxParallel = 16
)

func (p Params) check() error {
	switch {
	case p.Parallelism < 1 || p.Parallelism > maxParallel:
		return fmt.Errorf("argon2 parallelism %d outside 1..%d", p.Parallelism, maxParallel)
	case p.Iterations < 1 || p.Iterations > maxIter:
		return fmt.Errorf("argon2 iterations %d outside 1..%d", p.Iterations, maxIter)
	case p.Memory < 8*uint32(p.Parallelism) || p.Memory > maxMemory:
		return fmt.Errorf("argon2 memory %d KiB outside %d..%d", p.Memory, 8*uint32(p.Parallelism), maxMemory)
	}
	return nil
}

// HashSecret hashes secret with Argon2id v19 and a fresh 16-byte salt and
// returns the PHC string $argon2id$v=19$m=<m>,t=<t>,p=<p>$<salt>$<hash>
// (unpadded standard base64, 32-byte hash).
func HashSecret(secret string, p Params) (string, error) {
	if err := p.check(); err != nil {
		return "", err
	}
	var salt [saltLen]byte
	if _, err := rand.Read(salt[:]); err != nil {
		return "", err
	}
	sb := []byte(secret)
	h := argon2.IDKey(sb, salt[:], p.Iterations, p.Memory, p.Parallelism, hashLen)
	clear(sb)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		p.Memory, p.Iterations, p.Parallelism,
		base64.RawStdEncoding.EncodeToString(salt[:]),
		base64.RawStdEncoding.EncodeToString(h)), nil
}

// phc is a parsed PHC string.
type phc struct {
	p    Params
	salt []byte
	hash []byte
}

var b64 = base64.RawStdEncoding.Strict()

// parsePHC parses an Argon2id v19 PHC string strictly (parameter order m, t,
// p; canonical decimals; unpadded base64; salt 8..64 and hash 16..64 bytes).
func parsePHC(s string) (phc, error) {
	var out phc
	f := strings.Split(s, "$")
	if len(f) != 6 || f[0] != "" || f[1] != "argon2id" || f[2] != "v=19" {
		return out, ErrBadHash
	}
	kv := strings.Split(f[3], ",")
	if len(kv) != 3 {
		return out, ErrBadHash
	}
	var vals [3]uint64
	for i, name := range []string{"m=", "t=", "p="} {
		v, ok := strings.CutPrefix(kv[i], name)
		if !ok || v == "" || len(v) > 10 || (len(v) > 1 && v[0] == '0') {
			return out, ErrBadHash
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return out, ErrBadHash
		}
		vals[i] = n
	}
	if vals[2] > maxParallel {
		return out, ErrBadHash
	}
	out.p = Params{Memory: uint32(vals[0]), Iterations: uint32(vals[1]), Parallelism: uint8(vals[2])}
	if out.p.check() != nil {
		return out, ErrBadHash
	}
	var err error
	if out.salt, err = b64.DecodeString(f[4]); err != nil || len(out.salt) < 8 || len(out.salt) > 64 {
		return out, ErrBadHash
	}
	if out.hash, err = b64.DecodeString(f[5]); err != nil || len(out.hash) < 16 || len(out.hash) > 64 {
		return out, ErrBadHash
	}
	return out, nil
}

// ParsePHCParams returns the cost parameters recorded in a PHC string.
func ParsePHCParams(s string) (Params, error) {
	p, err := parsePHC(s)
	return p.p, err
}

// VerifySecret recomputes Argon2id with the salt and parameters of the PHC
// string and compares in constant time. The error is ErrBadHash for a
// malformed PHC string; a wrong secret is (false, nil).
func VerifySecret(secret, phcString string) (bool, error) {
	p, err := parsePHC(phcString)
	if err != nil {
		return false, err
	}
	sb := []byte(secret)
	h := argon2.IDKey(sb, p.salt, p.p.Iterations, p.p.Memory, p.p.Parallelism, uint32(len(p.hash)))
	clear(sb)
	return subtle.ConstantTimeCompare(h, p.hash) == 1, nil
}

// verifier bounds concurrent Argon2 runs and counts them.
type verifier struct {
	sem      chan struct{}
	runs     atomic.Uint64
	inflight atomic.Int64
	peak     atomic.Int64 // highest inflight seen (tests)
	dummy    string       // PHC of a random secret, for unknown key IDs
	// observe, when set, receives the duration of every verification
	// (tokmesh_auth_argon2_duration_seconds).
	observe atomic.Pointer[func(time.Duration)]
}

func newVerifier(slots int, p Params) (*verifier, error) {
	// The dummy hash uses the current parameters, so an unknown key costs
	// what a key created under this config costs.
	d, err := HashSecret(NewSecret(), p)
	if err != nil {
		return nil, err
	}
	return &verifier{sem: make(chan struct{}, slots), dummy: d}, nil
}

// verify runs VerifySecret once a slot is free, waiting at most until ctx ends.
func (v *verifier) verify(ctx context.Context, secret, phcString string) (bool, error) {
	select {
	case v.sem <- struct{}{}:
	default:
		select {
		case v.sem <- struct{}{}:
		case <-ctx.Done():
			return false, fmt.Errorf("auth: waiting for an argon2 slot: %w", ctx.Err())
		}
	}
	defer func() { <-v.sem }()
	v.runs.Add(1)
	n := v.inflight.Add(1)
	defer v.inflight.Add(-1)
	for {
		p := v.peak.Load()
		if n <= p || v.peak.CompareAndSwap(p, n) {
			break
		}
	}
	start := time.Now()
	ok, err := VerifySecret(secret, phcString)
	if f := v.observe.Load(); f != nil {
		(*f)(time.Since(start))
	}
	return ok, err
}

// hash runs HashSecret under the same concurrency bound.
func (v *verifier) hash(ctx context.Context, secret string, p Params) (string, error) {
	select {
	case v.sem <- struct{}{}:
	case <-ctx.Done():
		return "", fmt.Errorf("auth: waiting for an argon2 slot: %w", ctx.Err())
	}
	defer func() { <-v.sem }()
	return HashSecret(secret, p)
}
