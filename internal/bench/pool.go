package bench

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"
)

// pool is the data shared by the workers of one target: the preloaded
// sessions (TokMesh tokens and IDs, or Redis keys), unknown tokens for
// --invalid-ratio, and the naming of users and created keys. Read-only
// once the preload is done.
type pool struct {
	run     string   // random per invocation, so runs never share users or keys
	tokens  []string // preloaded tokens (TokMesh only)
	ids     []string // preloaded session IDs (TokMesh) or keys (Redis)
	unknown []string // tokens (TokMesh) or keys (Redis) that name nothing
	// groups: preloaded slot i belongs to user i % groups, spreading the
	// preload over the users (under the per-user quota).
	groups int
	users  int   // --users
	ttl    int64 // seconds
	value  string
	// Redis key prefixes.
	newKeyPfx string
}

const (
	unknownTokens = 1024
	redisValueLen = 256 // the value size of the Redis side (07-tools §2)
)

func newRunID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// newPool prepares the pool of one target. redis selects Redis key names
// instead of TokMesh tokens.
func newPool(run string, cfg *Config, redis bool) *pool {
	p := &pool{run: run, users: cfg.Users, ttl: int64(cfg.TTL.Seconds()), groups: max(1, min(cfg.Users, cfg.Preload))}
	p.ids = make([]string, cfg.Preload)
	p.unknown = make([]string, unknownTokens)
	if redis {
		p.value = strings.Repeat("v", redisValueLen)
		p.newKeyPfx = "tmbench:" + run + ":n:"
		for i := range p.ids {
			p.ids[i] = "tmbench:" + run + ":s:" + strconv.Itoa(i)
		}
		for i := range p.unknown {
			p.unknown[i] = "tmbench:" + run + ":x:" + strconv.Itoa(i)
		}
		return p
	}
	p.tokens = make([]string, cfg.Preload)
	for i := range p.unknown {
		var raw [32]byte
		_, _ = rand.Read(raw[:])
		p.unknown[i] = "tmtk_" + base64.RawURLEncoding.EncodeToString(raw[:])
	}
	return p
}

// appendUser appends the user ID of user number n.
func (p *pool) appendUser(b []byte, n int64) []byte {
	b = append(b, "bench-"...)
	b = append(b, p.run...)
	b = append(b, "-u"...)
	return strconv.AppendInt(b, n, 10)
}
