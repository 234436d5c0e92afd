package respapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/tidwall/redcon"

	"github.com/yndnr/tokmesh-go/internal/apierr"
	"github.com/yndnr/tokmesh-go/internal/auth"
	"github.com/yndnr/tokmesh-go/internal/buildinfo"
	"github.com/yndnr/tokmesh-go/internal/engine"
	"github.com/yndnr/tokmesh-go/internal/httpapi"
	"github.com/yndnr/tokmesh-go/internal/metrics"
	"github.com/yndnr/tokmesh-go/internal/session"
)

type cmdFlags uint8

const (
	flagNoBlock cmdFlags = 1 << iota // answered even while the IP is blocked (PING, QUIT)
	flagGated                        // readiness / lease / maintenance gate
	flagWrite
	// flagIdentity: the command sets or ends the connection's identity
	// (AUTH, HELLO, QUIT), so it runs even when the current key no longer
	// passes its re-check — a client must be able to re-authenticate.
	flagIdentity
)

type command struct {
	name  string // upper case
	lower string
	arity int             // Redis convention: n exact, -n at least n (name included)
	cap   auth.Capability // 0 = allowed before AUTH
	flags cmdFlags
	first int // COMMAND key spec
	last  int
	fn    func(c redcon.Conn, st *connState, args [][]byte)
	// series is the command's tokmesh_resp_* series (nil without metrics).
	series *metrics.RESPSeries
}

func commandTable(s *Server) map[string]*command {
	list := []*command{
		{name: "AUTH", arity: -2, flags: flagIdentity, fn: s.cmdAuth},
		{name: "HELLO", arity: -1, flags: flagIdentity, fn: s.cmdHello},
		{name: "PING", arity: -1, flags: flagNoBlock, fn: s.cmdPing},
		{name: "QUIT", arity: -1, flags: flagNoBlock | flagIdentity, fn: s.cmdQuit},
		{name: "SELECT", arity: 2, fn: s.cmdSelect},
		{name: "CLIENT", arity: -2, fn: s.cmdClient},
		{name: "COMMAND", arity: -1, fn: s.cmdCommand},
		{name: "INFO", arity: -1, cap: auth.CapInfo, fn: s.cmdInfo},

		{name: "TM.CREATE", arity: -2, cap: auth.CapWrite, flags: flagGated | flagWrite, fn: s.cmdCreate},
		{name: "TM.VALIDATE", arity: -2, cap: auth.CapValidate, flags: flagGated, fn: s.cmdValidate},
		{name: "TM.TOUCH", arity: 2, cap: auth.CapTouch, flags: flagGated | flagWrite, first: 1, last: 1, fn: s.cmdTouch},
		{name: "TM.RENEW", arity: 3, cap: auth.CapWrite, flags: flagGated | flagWrite, first: 1, last: 1, fn: s.cmdRenew},
		{name: "TM.REVOKE", arity: 2, cap: auth.CapWrite, flags: flagGated | flagWrite, first: 1, last: 1, fn: s.cmdRevoke},
		{name: "TM.REVOKE_USER", arity: -2, cap: auth.CapRevokeUser, flags: flagGated | flagWrite, fn: s.cmdRevokeUser},
		{name: "TM.LIST", arity: 2, cap: auth.CapListOwnUser, flags: flagGated, fn: s.cmdList},
		{name: "GET", arity: 2, cap: auth.CapReadSession, flags: flagGated, first: 1, last: 1, fn: s.cmdGet},
		{name: "EXISTS", arity: -2, cap: auth.CapReadSession, flags: flagGated, first: 1, last: -1, fn: s.cmdExists},
		{name: "TTL", arity: 2, cap: auth.CapReadSession, flags: flagGated, first: 1, last: 1, fn: s.cmdTTL},
		{name: "PTTL", arity: 2, cap: auth.CapReadSession, flags: flagGated, first: 1, last: 1, fn: s.cmdPTTL},
		{name: "EXPIRE", arity: -3, cap: auth.CapWrite, flags: flagGated | flagWrite, first: 1, last: 1, fn: s.cmdExpire},
		{name: "DEL", arity: -2, cap: auth.CapWrite, flags: flagGated | flagWrite, first: 1, last: -1, fn: s.cmdDel},
		{name: "SCAN", arity: -2, cap: auth.CapScan, flags: flagGated, fn: s.cmdScan},
	}
	m := make(map[string]*command, len(list))
	for _, c := range list {
		c.lower = strings.ToLower(c.name)
		m[c.name] = c
	}
	return m
}

// bstr views b as a string for calls that do not retain it.
func bstr(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

func ieq(b []byte, s string) bool { return strings.EqualFold(bstr(b), s) }

// engineError maps engine errors with the mapping HTTP uses
// (engine.APIError) and logs the ones that are the node's fault.
func (s *Server) engineError(err error) *apierr.Error {
	e := engine.APIError(err)
	if e.Code.Status() >= 500 {
		s.log.Error("resp command failed", "code", string(e.Code), "error", err.Error())
	}
	return e
}

// notLive reports errors that mean "no live session" for Redis-native commands.
func notLive(err error) bool {
	return errors.Is(err, session.ErrNotFound) || errors.Is(err, session.ErrExpired) || errors.Is(err, session.ErrRevoked)
}

func (s *Server) parseID(b []byte) (session.ID, bool) {
	return session.ParseID(bstr(b), s.cfg.Engine.Partitions())
}

// ---- connection and handshake ----

func (s *Server) authenticate(st *connState, cred string) *apierr.Error {
	ctx, cancel := context.WithTimeout(context.Background(), authTimeout)
	defer cancel()
	p, err := s.cfg.Authenticator.Authenticate(ctx, cred, st.ip)
	if err != nil {
		st.p = nil // a failed AUTH leaves the connection unauthenticated
		return s.authError(st, err, true)
	}
	st.p = p
	return nil
}

func (s *Server) cmdAuth(c redcon.Conn, st *connState, args [][]byte) {
	var cred string
	switch len(args) {
	case 2:
		cred = string(args[1])
	case 3:
		cred = string(args[1]) + ":" + string(args[2])
	default:
		c.WriteError("ERR syntax error")
		return
	}
	if aerr := s.authenticate(st, cred); aerr != nil {
		writeErr(c, aerr)
		return
	}
	c.WriteString("OK")
}

func (s *Server) cmdHello(c redcon.Conn, st *connState, args [][]byte) {
	if len(args) >= 2 && bstr(args[1]) != "2" {
		c.WriteError("NOPROTO unsupported protocol version")
		return
	}
	var cred, name string
	var haveAuth, haveName bool
	for i := 2; i < len(args); i++ {
		switch {
		case ieq(args[i], "AUTH") && i+2 < len(args):
			cred, haveAuth = string(args[i+1])+":"+string(args[i+2]), true
			i += 2
		case ieq(args[i], "SETNAME") && i+1 < len(args):
			name, haveName = string(args[i+1]), true
			i++
		default:
			c.WriteError("ERR Syntax error in HELLO option '" + sanitize(args[i]) + "'")
			return
		}
	}
	if haveName && !validName(name) {
		c.WriteError("ERR Client names cannot contain spaces, newlines or special characters.")
		return
	}
	if haveAuth {
		if aerr := s.authenticate(st, cred); aerr != nil {
			writeErr(c, aerr)
			return
		}
	}
	if haveName {
		st.name = name
	}
	c.WriteArray(14)
	c.WriteBulkString("server")
	c.WriteBulkString("tokmesh")
	c.WriteBulkString("version")
	c.WriteBulkString("7.2.0")
	c.WriteBulkString("proto")
	c.WriteInt(2)
	c.WriteBulkString("id")
	c.WriteInt64(st.id)
	c.WriteBulkString("mode")
	c.WriteBulkString(s.cfg.Mode)
	c.WriteBulkString("role")
	c.WriteBulkString("master")
	c.WriteBulkString("modules")
	c.WriteArray(0)
}

func (s *Server) cmdPing(c redcon.Conn, st *connState, args [][]byte) {
	switch len(args) {
	case 1:
		c.WriteString("PONG")
	case 2:
		c.WriteBulk(args[1])
	default:
		c.WriteError("ERR wrong number of arguments for 'ping' command")
	}
}

func (s *Server) cmdQuit(c redcon.Conn, st *connState, args [][]byte) {
	c.WriteString("OK")
	st.quitting = true
	c.Close()
}

func (s *Server) cmdSelect(c redcon.Conn, st *connState, args [][]byte) {
	if bstr(args[1]) == "0" {
		c.WriteString("OK")
		return
	}
	c.WriteError("ERR DB index is out of range")
}

func validName(n string) bool {
	for i := 0; i < len(n); i++ {
		if n[i] < '!' || n[i] > '~' {
			return false
		}
	}
	return true
}

func (s *Server) cmdClient(c redcon.Conn, st *connState, args [][]byte) {
	sub := strings.ToUpper(string(args[1]))
	arity := func(n int) bool {
		if len(args) != n {
			c.WriteError("ERR wrong number of arguments for 'client|" + strings.ToLower(sub) + "' command")
			return false
		}
		return true
	}
	switch sub {
	case "SETNAME":
		if !arity(3) {
			return
		}
		if !validName(string(args[2])) {
			c.WriteError("ERR Client names cannot contain spaces, newlines or special characters.")
			return
		}
		st.name = string(args[2])
		c.WriteString("OK")
	case "SETINFO":
		if !arity(4) {
			return
		}
		if !ieq(args[2], "LIB-NAME") && !ieq(args[2], "LIB-VER") {
			c.WriteError("ERR Unrecognized option '" + sanitize(args[2]) + "'")
			return
		}
		c.WriteString("OK")
	case "GETNAME":
		if !arity(2) {
			return
		}
		if st.name == "" {
			c.WriteNull()
			return
		}
		c.WriteBulkString(st.name)
	case "ID":
		if !arity(2) {
			return
		}
		c.WriteInt64(st.id)
	default:
		c.WriteError("ERR unknown subcommand '" + sanitize(args[1]) + "'. Try CLIENT HELP.")
	}
}

func (s *Server) cmdCommand(c redcon.Conn, st *connState, args [][]byte) {
	if len(args) == 1 {
		c.WriteArray(len(s.cmds))
		for _, d := range s.sortedCommands() {
			c.WriteArray(6)
			c.WriteBulkString(d.lower)
			c.WriteInt(d.arity)
			var flags []string
			switch {
			case d.flags&flagWrite != 0:
				flags = append(flags, "write")
			case d.cap != 0:
				flags = append(flags, "readonly")
			}
			if d.flags&flagNoBlock != 0 || d.cap == 0 {
				flags = append(flags, "fast", "no-auth")
			}
			c.WriteArray(len(flags))
			for _, f := range flags {
				c.WriteString(f)
			}
			c.WriteInt(d.first)
			c.WriteInt(d.last)
			if d.first > 0 {
				c.WriteInt(1)
			} else {
				c.WriteInt(0)
			}
		}
		return
	}
	switch {
	case ieq(args[1], "COUNT") && len(args) == 2:
		c.WriteInt(len(s.cmds))
	case ieq(args[1], "DOCS"):
		c.WriteArray(0)
	default:
		c.WriteError("ERR unknown subcommand '" + sanitize(args[1]) + "'. Try COMMAND HELP.")
	}
}

func (s *Server) sortedCommands() []*command {
	out := make([]*command, 0, len(s.cmds))
	for _, d := range s.cmds {
		out = append(out, d)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].name < out[j-1].name; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// INFO sections (03-resp-api §5), in Redis's order.
const (
	infoServer = 1 << iota
	infoStats
	infoKeyspace
	infoAll = infoServer | infoStats | infoKeyspace
)

func (s *Server) cmdInfo(c redcon.Conn, st *connState, args [][]byte) {
	want := 0
	if len(args) == 1 {
		want = infoAll
	}
	for _, a := range args[1:] {
		switch strings.ToLower(string(a)) {
		case "default", "all", "everything":
			want = infoAll
		case "server":
			want |= infoServer
		case "stats":
			want |= infoStats
		case "keyspace":
			want |= infoKeyspace
		}
	}
	var b strings.Builder
	header := func(title string) {
		if b.Len() > 0 {
			b.WriteString("\r\n") // a blank line between sections, as Redis writes
		}
		b.WriteString("# " + title + "\r\n")
	}
	if want&infoServer != 0 {
		ver := s.cfg.Version
		if ver == "" {
			ver = buildinfo.Version
		}
		nodeID := s.cfg.NodeID
		if nodeID == "" {
			nodeID = s.cfg.Engine.Node().NodeID
		}
		header("Server")
		fmt.Fprintf(&b, "redis_version:7.2.0\r\ntokmesh_version:%s\r\ntokmesh_mode:%s\r\ntokmesh_node_id:%s\r\nos:%s\r\narch_bits:%d\r\nprocess_id:%d\r\ntcp_port:%d\r\nuptime_in_seconds:%d\r\n",
			ver, s.cfg.Mode, nodeID, runtime.GOOS, strconv.IntSize, os.Getpid(), localPort(c), int64(time.Since(s.start)/time.Second))
	}
	if want&infoStats != 0 {
		header("Stats")
		fmt.Fprintf(&b, "total_connections_received:%d\r\ntotal_commands_processed:%d\r\ninstantaneous_ops_per_sec:%d\r\nrejected_connections:%d\r\nkeyspace_hits:%d\r\nkeyspace_misses:%d\r\ntokmesh_validations_valid:%d\r\ntokmesh_validations_invalid:%d\r\n",
			s.connsTotal.Load(), s.commands.Load(), s.opsPerSec.Load(), s.rejected.Load(), s.hits.Load(), s.misses.Load(), s.valid.Load(), s.invalid.Load())
	}
	if want&infoKeyspace != 0 {
		header("Keyspace")
		// A standalone node is primary of every partition: every live
		// session counts. Every session expires, so expires = keys.
		if n := s.cfg.Engine.Store().Stats().Live; n > 0 {
			fmt.Fprintf(&b, "db0:keys=%d,expires=%d,avg_ttl=%d\r\n", n, n, s.cfg.Engine.AvgTTLMillis())
		}
	}
	c.WriteBulkString(b.String())
}

// localPort is the port the client connected to (INFO tcp_port: the
// plaintext or the TLS port).
func localPort(c redcon.Conn) int {
	if nc := c.NetConn(); nc != nil {
		if a, ok := nc.LocalAddr().(*net.TCPAddr); ok {
			return a.Port
		}
	}
	return 0
}

// ---- session commands ----

func (s *Server) cmdCreate(c redcon.Conn, st *connState, args [][]byte) {
	var req session.CreateRequest
	res, tokenSet, aerr := s.create(st, args, &req)
	// Audited like POST /sessions: every create, success or failure.
	if aerr != nil {
		httpapi.AuditSessionCreate(s.cfg.Audit, s.auditCaller(st), &req, nil, aerr)
		writeErr(c, aerr)
		return
	}
	httpapi.AuditSessionCreate(s.cfg.Audit, s.auditCaller(st), &req, &res, nil)
	b := httpapi.AppendCreateResult(st.buf[:0], &res, tokenSet)
	c.WriteBulk(b)
	st.buf = b
}

// create parses TM.CREATE into *req and runs it.
func (s *Server) create(st *connState, args [][]byte, req *session.CreateRequest) (session.CreateResult, bool, *apierr.Error) {
	var ttl int64
	ttlArg := false
	switch {
	case len(args) == 2:
	case len(args) == 4 && ieq(args[2], "TTL"):
		n, err := strconv.ParseInt(bstr(args[3]), 10, 64)
		if err != nil {
			return session.CreateResult{}, false, apierr.Newf(apierr.ArgInvalid, "TTL must be an integer")
		}
		ttl, ttlArg = n, true
	default:
		return session.CreateResult{}, false, apierr.Newf(apierr.ArgInvalid, "syntax: TM.CREATE <json> [TTL <seconds>]")
	}
	// The same body rules as POST /sessions: one decoder for both protocols.
	r, token, tokenSet, aerr := httpapi.DecodeCreateSession(args[1])
	*req = r
	if aerr != nil {
		return session.CreateResult{}, tokenSet, aerr
	}
	if ttlArg {
		if req.TTLSet {
			return session.CreateResult{}, tokenSet, apierr.Newf(apierr.ArgConflicting, "TTL and ttl_seconds are both set")
		}
		req.TTLSeconds, req.TTLSet = ttl, true
	}
	if tokenSet && !session.ValidToken(token) {
		return session.CreateResult{}, tokenSet, apierr.New(apierr.TokenMalformed)
	}
	req.Token = token
	req.IP, req.UserAgent, req.CreatedBy = st.ip, st.name, st.p.KeyID
	res, err := s.cfg.Engine.Create(*req)
	if err != nil {
		return res, tokenSet, s.engineError(err)
	}
	return res, tokenSet, nil
}

// auditCaller describes the connection's caller for session audit records:
// actor = the authenticated key ID, user agent = the connection name; RESP
// has no request IDs.
func (s *Server) auditCaller(st *connState) httpapi.AuditCaller {
	ip := st.ip.String()
	c := httpapi.AuditCaller{TCPRemoteIP: ip, ClientIP: ip, UserAgent: st.name}
	if st.p != nil {
		c.KeyID, c.Role = st.p.KeyID, string(st.p.Role)
	}
	return c
}

func (s *Server) cmdValidate(c redcon.Conn, st *connState, args [][]byte) {
	touch := false
	if len(args) > 2 {
		if len(args) != 3 || !ieq(args[2], "TOUCH") {
			writeErr(c, apierr.Newf(apierr.ArgInvalid, "syntax: TM.VALIDATE <token> [TOUCH]"))
			return
		}
		touch = true
	}
	// The engine hashes the token and never keeps it: no copy.
	sess, err := s.cfg.Engine.Validate(bstr(args[1]), touch, st.ip, st.name)
	if err == nil {
		s.valid.Add(1)
		st.buf = sess.AppendJSON(st.buf[:0])
		c.WriteBulk(st.buf)
		return
	}
	// tokmesh_token_validations_total is counted by the engine (every protocol).
	var code apierr.Code
	switch {
	case errors.Is(err, session.ErrTokenMalformed):
		code = apierr.TokenMalformed
	case errors.Is(err, session.ErrNotFound):
		code = apierr.TokenUnknown
	case errors.Is(err, session.ErrExpired):
		code = apierr.TokenExpired
	case errors.Is(err, session.ErrRevoked):
		code = apierr.TokenRevoked
	default:
		writeErr(c, s.engineError(err))
		return
	}
	s.invalid.Add(1)
	if (code == apierr.TokenMalformed || code == apierr.TokenUnknown) && s.cfg.Brute != nil {
		if s.cfg.Brute.TokenFailure(st.ip) {
			s.auditBlock(st.ip, "token_failures")
		}
	}
	writeCode(c, code)
}

func (s *Server) cmdTouch(c redcon.Conn, st *connState, args [][]byte) {
	id, ok := s.parseID(args[1])
	if !ok {
		writeCode(c, apierr.SessNotFound)
		return
	}
	sess, err := s.cfg.Engine.Touch(id, st.ip, st.name)
	if err != nil {
		writeErr(c, s.engineError(err))
		return
	}
	c.WriteInt64(sess.LastActive)
}

func (s *Server) cmdRenew(c redcon.Conn, st *connState, args [][]byte) {
	ttl, err := strconv.ParseInt(bstr(args[2]), 10, 64)
	if err != nil {
		writeErr(c, apierr.Newf(apierr.ArgInvalid, "ttl_seconds must be an integer"))
		return
	}
	// A malformed ID is looked up as the zero ID (no session has it), so
	// the TTL range comes first as for an unknown ID (01 §1).
	id, ok := s.parseID(args[1])
	if !ok {
		id = session.ID{}
	}
	sess, err := s.cfg.Engine.Renew(id, ttl)
	if err != nil {
		writeErr(c, s.engineError(err))
		return
	}
	c.WriteInt64(sess.ExpiresAt)
}

func (s *Server) cmdRevoke(c redcon.Conn, st *connState, args [][]byte) {
	revoked, aerr := s.revoke(st, args[1])
	if aerr != nil {
		writeErr(c, aerr)
		return
	}
	if revoked {
		c.WriteInt(1)
	} else {
		c.WriteInt(0)
	}
}

// revoke revokes one session (TM.REVOKE, each key of DEL) and audits it
// like POST /sessions/{id}/revoke: a malformed ID names no session and is
// recorded with an empty resource.
func (s *Server) revoke(st *connState, arg []byte) (bool, *apierr.Error) {
	id, ok := s.parseID(arg)
	if !ok {
		httpapi.AuditSessionRevoke(s.cfg.Audit, s.auditCaller(st), "", false, nil)
		return false, nil
	}
	revoked, err := s.cfg.Engine.Revoke(id)
	if err != nil {
		aerr := s.engineError(err)
		httpapi.AuditSessionRevoke(s.cfg.Audit, s.auditCaller(st), id.String(), false, aerr)
		return false, aerr
	}
	httpapi.AuditSessionRevoke(s.cfg.Audit, s.auditCaller(st), id.String(), revoked, nil)
	return revoked, nil
}

func (s *Server) cmdRevokeUser(c redcon.Conn, st *connState, args [][]byte) {
	var except session.ID
	fail := func(aerr *apierr.Error) {
		httpapi.AuditRevokeAll(s.cfg.Audit, s.auditCaller(st), "", 0, aerr)
		writeErr(c, aerr)
	}
	switch {
	case len(args) == 2:
	case len(args) == 4 && ieq(args[2], "EXCEPT"):
		except, _ = s.parseID(args[3]) // a malformed ID names no session: nothing is kept
	default:
		fail(apierr.Newf(apierr.ArgInvalid, "syntax: TM.REVOKE_USER <user_id> [EXCEPT <sid>]"))
		return
	}
	if session.CheckUserID(bstr(args[1])) != nil {
		fail(apierr.Newf(apierr.SessInvalidField, "user_id is not valid"))
		return
	}
	userID := string(args[1])
	n, err := s.cfg.Engine.RevokeUser(userID, except)
	if err != nil {
		aerr := s.engineError(err)
		httpapi.AuditRevokeAll(s.cfg.Audit, s.auditCaller(st), userID, n, aerr)
		writeErr(c, aerr)
		return
	}
	httpapi.AuditRevokeAll(s.cfg.Audit, s.auditCaller(st), userID, n, nil)
	c.WriteInt(n)
}

// listLimit bounds TM.LIST (the per-user quota bounds it in practice).
const listLimit = 100000

func (s *Server) cmdList(c redcon.Conn, st *connState, args [][]byte) {
	if len(args[1]) == 0 {
		writeErr(c, apierr.Newf(apierr.SessInvalidField, "user_id is not valid"))
		return
	}
	res, err := s.cfg.Engine.List(session.ListQuery{UserID: string(args[1]), SortBy: "created_at", Desc: true, Limit: listLimit})
	if err != nil {
		writeErr(c, s.engineError(err))
		return
	}
	c.WriteArray(len(res.Items))
	for i := range res.Items {
		st.buf = res.Items[i].AppendJSON(st.buf[:0])
		c.WriteBulk(st.buf)
	}
}

// lookup is Get for Redis-native commands: ok=false for anything not live,
// aerr for a real failure.
func (s *Server) lookup(arg []byte) (session.Session, bool, *apierr.Error) {
	id, ok := s.parseID(arg)
	if !ok {
		s.misses.Add(1)
		return session.Session{}, false, nil
	}
	sess, err := s.cfg.Engine.Get(id)
	if err != nil {
		if notLive(err) {
			s.misses.Add(1)
			return sess, false, nil
		}
		return sess, false, s.engineError(err)
	}
	s.hits.Add(1)
	return sess, true, nil
}

func (s *Server) cmdGet(c redcon.Conn, st *connState, args [][]byte) {
	sess, ok, aerr := s.lookup(args[1])
	switch {
	case aerr != nil:
		writeErr(c, aerr)
	case !ok:
		c.WriteNull()
	default:
		st.buf = sess.AppendJSON(st.buf[:0])
		c.WriteBulk(st.buf)
	}
}

func (s *Server) cmdExists(c redcon.Conn, st *connState, args [][]byte) {
	n := 0
	for _, a := range args[1:] {
		_, ok, aerr := s.lookup(a)
		if aerr != nil {
			writeErr(c, aerr)
			return
		}
		if ok {
			n++
		}
	}
	c.WriteInt(n)
}

// remainingMs is the time to the effective expiry, or -2 when not live.
func (s *Server) remainingMs(c redcon.Conn, arg []byte) (int64, bool) {
	sess, ok, aerr := s.lookup(arg)
	if aerr != nil {
		writeErr(c, aerr)
		return 0, false
	}
	if !ok {
		return -2, true
	}
	return max(sess.EffectiveExpiry()-time.Now().UnixMilli(), 0), true
}

func (s *Server) cmdTTL(c redcon.Conn, st *connState, args [][]byte) {
	ms, ok := s.remainingMs(c, args[1])
	if !ok {
		return
	}
	if ms == -2 {
		c.WriteInt(-2)
		return
	}
	c.WriteInt64((ms + 500) / 1000)
}

func (s *Server) cmdPTTL(c redcon.Conn, st *connState, args [][]byte) {
	if ms, ok := s.remainingMs(c, args[1]); ok {
		c.WriteInt64(ms)
	}
}

func (s *Server) cmdExpire(c redcon.Conn, st *connState, args [][]byte) {
	secs, err := strconv.ParseInt(bstr(args[2]), 10, 64)
	if err != nil {
		c.WriteError("ERR value is not an integer or out of range")
		return
	}
	if len(args) > 3 {
		writeErr(c, apierr.Newf(apierr.ArgInvalid, "EXPIRE options are not supported"))
		return
	}
	id, ok := s.parseID(args[1])
	if !ok {
		id = session.ID{} // malformed: the zero ID, as in TM.RENEW
	}
	if _, err := s.cfg.Engine.Renew(id, secs); err != nil {
		if notLive(err) {
			c.WriteInt(0)
			return
		}
		writeErr(c, s.engineError(err))
		return
	}
	c.WriteInt(1)
}

func (s *Server) cmdDel(c redcon.Conn, st *connState, args [][]byte) {
	if len(args)-1 > maxDelKeys {
		aerr := apierr.Newf(apierr.ArgInvalid, "too many keys")
		httpapi.AuditSessionRevoke(s.cfg.Audit, s.auditCaller(st), "", false, aerr)
		writeErr(c, aerr)
		return
	}
	n := 0
	for _, a := range args[1:] {
		revoked, aerr := s.revoke(st, a)
		if aerr != nil {
			writeErr(c, aerr)
			return
		}
		if revoked {
			n++
		}
	}
	c.WriteInt(n)
}
