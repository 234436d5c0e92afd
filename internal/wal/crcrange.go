package wal

import "hash/crc32"

// The torn-tail check scans a damaged segment byte by byte for any frame
// whose CRC checks out. Computing each candidate's CRC from scratch costs its
// length (up to 1 MiB), which makes a scan quadratic on structured garbage.
// crcIndex answers "CRC32C of data[a:b]" for any range in time independent of
// b-a, from checkpoints of the running CRC and the linearity of CRCs:
//
//	Update(c, p) = A(len(p))·c  XOR  Checksum(p)
//
// where A(n) is the GF(2)-linear map "advance the register over n zero
// bytes". With prefix CRCs C(i) = Checksum(data[:i]):
//
//	Checksum(data[a:b]) = C(b) XOR A(b-a)·C(a)

const crcCheckpoint = 512 // bytes between checkpoints

// gf2Matrix is a 32×32 matrix over GF(2), stored as its columns.
type gf2Matrix [32]uint32

func (m *gf2Matrix) apply(v uint32) uint32 {
	var r uint32
	for i := 0; v != 0; i, v = i+1, v>>1 {
		if v&1 != 0 {
			r ^= m[i]
		}
	}
	return r
}

// zeroAdvance[k] is A(2^k); enough powers for any range within a segment read
// into memory (int is at most 64 bits).
var zeroAdvance = func() (p [64]gf2Matrix) {
	// A(1): one zero byte through the reflected Castagnoli register.
	for i := range 32 {
		r := uint32(1) << i
		p[0][i] = castagnoli[r&0xff] ^ r>>8
	}
	for k := 1; k < len(p); k++ {
		for i := range 32 {
			p[k][i] = p[k-1].apply(p[k-1][i])
		}
	}
	return p
}()

// crcShift returns A(n)·c.
func crcShift(c uint32, n int) uint32 {
	for k := 0; n != 0; k, n = k+1, n>>1 {
		if n&1 != 0 {
			c = zeroAdvance[k].apply(c)
		}
	}
	return c
}

type crcIndex struct {
	data []byte
	cp   []uint32 // cp[j] = Checksum(data[:j*crcCheckpoint])
}

func newCRCIndex(data []byte) *crcIndex {
	x := &crcIndex{data: data, cp: make([]uint32, 0, len(data)/crcCheckpoint+1)}
	var c uint32
	x.cp = append(x.cp, 0)
	for off := 0; off+crcCheckpoint <= len(data); off += crcCheckpoint {
		c = crc32.Update(c, castagnoli, data[off:off+crcCheckpoint])
		x.cp = append(x.cp, c)
	}
	return x
}

// prefix returns Checksum(data[:i]).
func (x *crcIndex) prefix(i int) uint32 {
	j := i / crcCheckpoint
	return crc32.Update(x.cp[j], castagnoli, x.data[j*crcCheckpoint:i])
}

// sum returns Checksum(data[a:b]).
func (x *crcIndex) sum(a, b int) uint32 {
	if b-a <= 2*crcCheckpoint {
		return crc32.Checksum(x.data[a:b], castagnoli)
	}
	return x.prefix(b) ^ crcShift(x.prefix(a), b-a)
}
