package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Size is a number of bytes. In configuration it is written as an integer
// number of bytes or as an integer followed by KiB, MiB or GiB ("64KiB").
type Size int64

// Size units.
const (
	Byte Size = 1
	KiB       = 1024 * Byte
	MiB       = 1024 * KiB
	GiB       = 1024 * MiB
)

var sizeUnits = []struct {
	suffix string
	mult   Size
}{{"GiB", GiB}, {"MiB", MiB}, {"KiB", KiB}}

// errSyntax marks a value that cannot be parsed as its type (TM-CFG-1001);
// errRange marks a well-formed number that does not fit (TM-CFG-1002).
var (
	errSyntax = errors.New("invalid syntax")
	errRange  = errors.New("value out of range")
)

// ParseSize parses "1048576", "64KiB", "100MiB" or "1GiB". Only integers
// are accepted; negative sizes are invalid.
func ParseSize(s string) (Size, error) {
	num, mult := s, Byte
	for _, u := range sizeUnits {
		if strings.HasSuffix(s, u.suffix) {
			num, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := parseUnsigned(num)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", s, err)
	}
	if n > uint64(math.MaxInt64/int64(mult)) {
		return 0, fmt.Errorf("size %q: %w", s, errRange)
	}
	return Size(int64(n) * int64(mult)), nil
}

// String renders the size with the largest binary unit that divides it
// exactly, so that ParseSize(s.String()) == s.
func (s Size) String() string {
	if s > 0 {
		for _, u := range sizeUnits {
			if s%u.mult == 0 {
				return strconv.FormatInt(int64(s/u.mult), 10) + u.suffix
			}
		}
	}
	return strconv.FormatInt(int64(s), 10)
}

// Bytes returns the size as an int64 byte count.
func (s Size) Bytes() int64 { return int64(s) }

// MarshalText implements encoding.TextMarshaler.
func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Size) UnmarshalText(b []byte) error {
	v, err := ParseSize(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Rate is a bandwidth in bits per second. In configuration it is written as
// an integer followed by bps, Kbps, Mbps or Gbps (decimal: 1Kbps = 1000 bit/s).
type Rate int64

// Rate units.
const (
	BitPerSecond  Rate = 1
	KbitPerSecond      = 1000 * BitPerSecond
	MbitPerSecond      = 1000 * KbitPerSecond
	GbitPerSecond      = 1000 * MbitPerSecond
)

var rateUnits = []struct {
	suffix string
	mult   Rate
}{{"Gbps", GbitPerSecond}, {"Mbps", MbitPerSecond}, {"Kbps", KbitPerSecond}, {"bps", BitPerSecond}}

// ParseRate parses "20Mbps", "1Kbps", "10Gbps" or "500bps". Only integers
// are accepted.
func ParseRate(s string) (Rate, error) {
	for _, u := range rateUnits {
		if !strings.HasSuffix(s, u.suffix) {
			continue
		}
		n, err := parseUnsigned(strings.TrimSuffix(s, u.suffix))
		if err != nil {
			return 0, fmt.Errorf("rate %q: %w", s, err)
		}
		if n > uint64(math.MaxInt64/int64(u.mult)) {
			return 0, fmt.Errorf("rate %q: %w", s, errRange)
		}
		return Rate(int64(n) * int64(u.mult)), nil
	}
	return 0, fmt.Errorf("rate %q: %w (want <n>Kbps, <n>Mbps or <n>Gbps)", s, errSyntax)
}

// String renders the rate with the largest decimal unit that divides it
// exactly, so that ParseRate(r.String()) == r.
func (r Rate) String() string {
	for _, u := range rateUnits {
		if r != 0 && r%u.mult == 0 {
			return strconv.FormatInt(int64(r/u.mult), 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(r), 10) + "bps"
}

// BitsPerSecond returns the rate in bits per second.
func (r Rate) BitsPerSecond() int64 { return int64(r) }

// BytesPerSecond returns the rate in whole bytes per second (rounded down).
func (r Rate) BytesPerSecond() int64 { return int64(r) / 8 }

// MarshalText implements encoding.TextMarshaler.
func (r Rate) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (r *Rate) UnmarshalText(b []byte) error {
	v, err := ParseRate(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// parseUnsigned accepts only ASCII digits (no sign, spaces or underscores).
func parseUnsigned(s string) (uint64, error) {
	if s == "" {
		return 0, errSyntax
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errSyntax
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, errRange // only overflow is possible here
	}
	return n, nil
}

// ParseDuration parses a Go duration ("100ms", "2h", "1h30m"). Unlike
// time.ParseDuration it rejects surrounding spaces.
func ParseDuration(s string) (time.Duration, error) {
	if strings.TrimSpace(s) != s {
		return 0, fmt.Errorf("duration %q: %w", s, errSyntax)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		// time.ParseDuration reports overflow as "invalid duration" too.
		return 0, fmt.Errorf("duration %q: %w", s, errSyntax)
	}
	return d, nil
}

// FormatDuration renders d in the shortest Go syntax that parses back to d:
// "2h" rather than "2h0m0s", "10m" rather than "10m0s".
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
