package bench

import (
	"bytes"
	"strconv"

	"github.com/yndnr/tokmesh-go/pkg/client"
)

// respDriver drives TokMesh's RESP port (TM.* commands) or, with redis
// set, a Redis server with the equivalent native commands — one code
// path, so the two sides differ only in the commands sent:
//
//	validate   TM.VALIDATE tok [TOUCH]         GET key  (GETEX key EX ttl with --touch)
//	create     TM.CREATE json                  SET key value EX ttl
//	touch      TM.TOUCH sid                    EXPIRE key ttl
//	renew      TM.RENEW sid ttl                EXPIRE key ttl
//	revoke     TM.REVOKE sid                   DEL key
type respDriver struct {
	connRef
	dial   dialer
	hello  []byte // AUTH (+ CLIENT SETNAME), pre-encoded; nil: none
	nHello int
	c      *client.RESPConn
	p      *pool
	redis  bool
	touch  bool
	worker int

	buf  []byte // command being encoded
	ubuf []byte // user ID
	jbuf []byte // TM.CREATE JSON
}

func newRESPDriver(d dialer, p *pool, redis bool, cfg *Config, worker int, auth []string) *respDriver {
	rd := &respDriver{dial: d, p: p, redis: redis, touch: cfg.Touch, worker: worker}
	if len(auth) > 0 {
		rd.hello = client.AppendCommand(rd.hello, auth...)
		rd.nHello++
	}
	if !redis {
		rd.hello = client.AppendCommand(rd.hello, "CLIENT", "SETNAME", "tokmesh-bench")
		rd.nHello++
	}
	return rd
}

func (d *respDriver) ready() error {
	if d.c != nil {
		return nil
	}
	nc, err := d.dial.dial()
	if err != nil {
		return err
	}
	c := client.NewRESPConn(nc, 64<<10, 16<<10)
	if d.nHello > 0 {
		_ = c.Write(d.hello)
		if err := c.Flush(); err != nil {
			nc.Close()
			return err
		}
		for i := 0; i < d.nHello; i++ {
			v, err := c.ReceiveValue()
			if err != nil {
				nc.Close()
				return err
			}
			if v.Kind == client.ReplyError {
				nc.Close()
				return client.RESPError(v.Str)
			}
		}
	}
	d.c = c
	d.set(nc)
	return nil
}

func (d *respDriver) broken() {
	if d.c != nil {
		d.c.Close()
		d.c = nil
		d.set(nil)
	}
}

func (d *respDriver) close() { d.broken() }

func (d *respDriver) flush() error {
	if d.c == nil {
		return errNotConnected
	}
	return d.c.Flush()
}

// target returns the session ID / key a session request names.
func (d *respDriver) target(r *request) string {
	if r.key != "" {
		return r.key
	}
	return d.p.ids[r.idx]
}

func (d *respDriver) send(r *request) {
	b := d.buf[:0]
	if d.redis {
		b = d.encodeRedis(b, r)
	} else {
		b = d.encodeTM(b, r)
	}
	d.buf = b
	if d.c != nil {
		_ = d.c.Write(b) // a write error shows again in flush
	}
}

func (d *respDriver) encodeTM(b []byte, r *request) []byte {
	switch r.op {
	case opValidate:
		tok := d.p.tokens
		if r.invalid {
			tok = d.p.unknown
		}
		if d.touch {
			b = appendArr(b, 3)
			b = appendBulk(b, "TM.VALIDATE")
			b = appendBulk(b, tok[r.idx])
			return appendBulk(b, "TOUCH")
		}
		b = appendArr(b, 2)
		b = appendBulk(b, "TM.VALIDATE")
		return appendBulk(b, tok[r.idx])
	case opCreate:
		d.jbuf = appendCreateJSON(d.jbuf[:0], d.p, r.user)
		b = appendArr(b, 2)
		b = appendBulk(b, "TM.CREATE")
		return appendBulkB(b, d.jbuf)
	case opTouch:
		b = appendArr(b, 2)
		b = appendBulk(b, "TM.TOUCH")
		return appendBulk(b, d.target(r))
	case opRenew:
		b = appendArr(b, 3)
		b = appendBulk(b, "TM.RENEW")
		b = appendBulk(b, d.target(r))
		return appendBulkInt(b, d.p.ttl)
	case opRevoke:
		b = appendArr(b, 2)
		b = appendBulk(b, "TM.REVOKE")
		return appendBulk(b, d.target(r))
	}
	return b
}

func (d *respDriver) encodeRedis(b []byte, r *request) []byte {
	switch r.op {
	case opValidate:
		keys := d.p.ids
		if r.invalid {
			keys = d.p.unknown
		}
		if d.touch {
			b = appendArr(b, 4)
			b = appendBulk(b, "GETEX")
			b = appendBulk(b, keys[r.idx])
			b = appendBulk(b, "EX")
			return appendBulkInt(b, d.p.ttl)
		}
		b = appendArr(b, 2)
		b = appendBulk(b, "GET")
		return appendBulk(b, keys[r.idx])
	case opCreate:
		b = appendArr(b, 5)
		b = appendBulk(b, "SET")
		if r.preload {
			b = appendBulk(b, d.p.ids[r.idx])
		} else {
			d.ubuf = d.appendNewKey(d.ubuf[:0], r.seq)
			b = appendBulkB(b, d.ubuf)
		}
		b = appendBulk(b, d.p.value)
		b = appendBulk(b, "EX")
		return appendBulkInt(b, d.p.ttl)
	case opTouch, opRenew:
		b = appendArr(b, 3)
		b = appendBulk(b, "EXPIRE")
		b = appendBulk(b, d.target(r))
		return appendBulkInt(b, d.p.ttl)
	case opRevoke:
		b = appendArr(b, 2)
		b = appendBulk(b, "DEL")
		return appendBulk(b, d.target(r))
	}
	return b
}

func (d *respDriver) appendNewKey(b []byte, seq int64) []byte {
	b = append(b, d.p.newKeyPfx...)
	b = strconv.AppendInt(b, int64(d.worker), 10)
	b = append(b, ':')
	return strconv.AppendInt(b, seq, 10)
}

// appendCreateJSON is the create body of both TokMesh protocols.
func appendCreateJSON(b []byte, p *pool, user int64) []byte {
	b = append(b, `{"user_id":"`...)
	b = p.appendUser(b, user)
	b = append(b, `","ttl_seconds":`...)
	b = strconv.AppendInt(b, p.ttl, 10)
	return append(b, `,"data":{"tenant":"acme","idp":"tokmesh-bench"}}`...)
}

func (d *respDriver) receive(r *request) (result, error) {
	if d.c == nil {
		return result{}, errNotConnected
	}
	rep, err := d.c.Receive()
	if err != nil {
		return result{}, err
	}
	switch rep.Kind {
	case client.ReplyError:
		code, _ := client.SplitRESPError(rep.Data)
		if r.op == opValidate && !d.redis && bytes.HasPrefix(code, []byte("TM-TOKN-")) {
			return result{out: outInvalid, code: code}, nil
		}
		return result{out: outError, code: code}, nil
	case client.ReplyArray:
		// No operation answers an array: drain it to stay in sync.
		for i := int64(0); i < rep.Int; i++ {
			if _, err := d.c.ReceiveValue(); err != nil {
				return result{}, err
			}
		}
		return result{out: outError, code: bCodeProto}, nil
	}
	want := client.ReplyInt
	switch {
	case r.op == opValidate:
		want = client.ReplyBulk
		if d.redis && rep.Kind == client.ReplyNil {
			return result{out: outInvalid, code: bRedisNil}, nil
		}
	case r.op == opCreate && d.redis:
		want = client.ReplyStatus
	case r.op == opCreate:
		want = client.ReplyBulk
	case d.redis && (r.op == opTouch || r.op == opRenew) && rep.Kind == client.ReplyInt && rep.Int == 0:
		return result{out: outError, code: bCodeRedisMiss}, nil
	}
	if rep.Kind != want {
		return result{out: outError, code: bCodeProto}, nil
	}
	return result{out: outOK, body: rep.Data}, nil
}

func (d *respDriver) created(r *request, res result) string {
	if d.redis {
		if r.preload {
			return d.p.ids[r.idx]
		}
		return string(d.appendNewKey(nil, r.seq))
	}
	return string(jsonField(res.body, "session_id"))
}
