package respapi

import (
	"strconv"

	"github.com/tidwall/redcon"

	"github.com/yndnr/tokmesh-go/internal/apierr"
	"github.com/yndnr/tokmesh-go/internal/session"
)

// SCAN COUNT limits (03-resp-api §4).
const (
	defaultScanCount = 10
	maxScanCount     = 1000
)

// cmdScan is SCAN <cursor> [MATCH <glob>] [COUNT <n>] [TYPE <type>]: the
// live session IDs of the partitions this node is primary of, weakly
// consistent (engine.Scan). Argument errors use Redis wording, except
// COUNT above 1000 (TM-ARG-1001). Every session is a string key, so TYPE
// other than string ends the scan at once with nothing.
func (s *Server) cmdScan(c redcon.Conn, st *connState, args [][]byte) {
	cursor, err := strconv.ParseUint(bstr(args[1]), 10, 64)
	if err != nil {
		c.WriteError("ERR invalid cursor")
		return
	}
	count := defaultScanCount
	var pattern string
	match, stringType := false, true
	for i := 2; i < len(args); i += 2 {
		if i+1 >= len(args) {
			c.WriteError("ERR syntax error")
			return
		}
		v := args[i+1]
		switch {
		case ieq(args[i], "MATCH"):
			pattern, match = string(v), true
		case ieq(args[i], "COUNT"):
			n, err := strconv.ParseInt(bstr(v), 10, 64)
			switch {
			case err != nil:
				c.WriteError("ERR value is not an integer or out of range")
				return
			case n < 1:
				c.WriteError("ERR syntax error")
				return
			case n > maxScanCount:
				writeErr(c, apierr.Newf(apierr.ArgInvalid, "COUNT must be at most 1000"))
				return
			}
			count = int(n)
		case ieq(args[i], "TYPE"):
			stringType = ieq(v, "string")
		default:
			c.WriteError("ERR syntax error")
			return
		}
	}
	if !stringType {
		c.WriteArray(2)
		c.WriteBulkString("0")
		c.WriteArray(0)
		return
	}
	ids := make([]session.ID, 0, count)
	next, err := s.cfg.Engine.Scan(cursor, count, func(id session.ID) { ids = append(ids, id) })
	if err != nil {
		writeErr(c, s.engineError(err))
		return
	}
	keys := make([]string, 0, len(ids))
	for _, id := range ids {
		// MATCH filters after the fetch, as in Redis: a page may be empty.
		if k := id.String(); !match || globMatch(pattern, k) {
			keys = append(keys, k)
		}
	}
	c.WriteArray(2)
	c.WriteBulkString(strconv.FormatUint(next, 10))
	c.WriteArray(len(keys))
	for _, k := range keys {
		c.WriteBulkString(k)
	}
}

// globMatch reports whether s matches the Redis glob pattern (as in
// Redis's stringmatchlen, case-sensitive): '*' any run, '?' any byte,
// '[abc]', '[^abc]', '[a-z]' classes, '\' escapes the next byte. It
// backtracks only to the last '*', so its cost is at most
// len(pattern)×len(s) whatever the pattern.
func globMatch(pattern, s string) bool {
	p, i := 0, 0
	starP, starI := -1, 0
	for i < len(s) {
		if p < len(pattern) {
			if pattern[p] == '*' {
				starP, starI = p, i
				p++
				continue
			}
			if n, ok := matchOne(pattern[p:], s[i]); ok {
				p += n
				i++
				continue
			}
		}
		if starP < 0 {
			return false
		}
		// Let the last '*' absorb one more byte and retry after it.
		starI++
		p, i = starP+1, starI
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// matchOne matches byte c against the pattern element at the start of
// pattern (not '*'); it returns the element's length and whether c matched.
func matchOne(pattern string, c byte) (int, bool) {
	switch pattern[0] {
	case '?':
		return 1, true
	case '\\':
		if len(pattern) >= 2 {
			return 2, pattern[1] == c
		}
		return 1, c == '\\'
	case '[':
		j, not, matched := 1, false, false
		if j < len(pattern) && pattern[j] == '^' {
			not = true
			j++
		}
		for j < len(pattern) {
			switch {
			case pattern[j] == '\\' && j+1 < len(pattern):
				matched = matched || pattern[j+1] == c
				j += 2
			case pattern[j] == ']':
				return j + 1, matched != not
			case j+2 < len(pattern) && pattern[j+1] == '-':
				lo, hi := pattern[j], pattern[j+2]
				if lo > hi {
					lo, hi = hi, lo
				}
				matched = matched || (lo <= c && c <= hi)
				j += 3
			default:
				matched = matched || pattern[j] == c
				j++
			}
		}
		// An unterminated class runs to the end of the pattern (Redis).
		return j, matched != not
	default:
		return 1, pattern[0] == c
	}
}
