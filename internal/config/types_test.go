package config

import (
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want Size
		ok   bool
	}{
		{"0", 0, true},
		{"1048576", MiB, true},
		{"64KiB", 64 * KiB, true},
		{"100MiB", 100 * MiB, true},
		{"64GiB", 64 * GiB, true},
		{"1KiB", KiB, true},
		{"", 0, false},
		{"KiB", 0, false},
		{"-1", 0, false},
		{"+1", 0, false},
		{"1.5MiB", 0, false},
		{"64kib", 0, false},
		{"64 KiB", 0, false},
		{"64KB", 0, false},
		{"1TiB", 0, false},
		{" 64", 0, false},
		{"99999999999999999999", 0, false},
		{"9000000000GiB", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestSizeString(t *testing.T) {
	for in, want := range map[Size]string{0: "0", 1: "1", 1025: "1025", KiB: "1KiB", 64 * KiB: "64KiB", 1536 * KiB: "1536KiB", 100 * MiB: "100MiB", 64 * GiB: "64GiB"} {
		if got := in.String(); got != want {
			t.Errorf("Size(%d).String() = %q, want %q", int64(in), got, want)
		}
	}
}

func TestParseRate(t *testing.T) {
	tests := []struct {
		in   string
		want Rate
		ok   bool
	}{
		{"20Mbps", 20_000_000, true},
		{"1Kbps", 1000, true},
		{"10Gbps", 10_000_000_000, true},
		{"500bps", 500, true},
		{"0bps", 0, true},
		{"20", 0, false},
		{"20mbps", 0, false},
		{"20MBps", 0, false},
		{"1.5Gbps", 0, false},
		{"Mbps", 0, false},
		{"-1Kbps", 0, false},
		{"99999999999Gbps", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseRate(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
	if got := Rate(20_000_000).String(); got != "20Mbps" {
		t.Errorf("String = %q", got)
	}
	if got := Rate(1500).String(); got != "1500bps" {
		t.Errorf("String = %q", got)
	}
	if got := Rate(20_000_000).BytesPerSecond(); got != 2_500_000 {
		t.Errorf("BytesPerSecond = %d", got)
	}
}

func TestParseAndFormatDuration(t *testing.T) {
	for _, tt := range []struct {
		in, out string
		ok      bool
	}{
		{"100ms", "100ms", true},
		{"2h", "2h", true},
		{"720h", "720h", true},
		{"120s", "2m", true},
		{"1h30m", "1h30m", true},
		{"90m", "1h30m", true},
		{"0s", "0s", true},
		{"0", "0s", true},
		{"1.5s", "1.5s", true},
		{"5", "", false},
		{"five seconds", "", false},
		{" 5s", "", false},
		{"5 s", "", false},
		{"", "", false},
	} {
		d, err := ParseDuration(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("ParseDuration(%q) err = %v, want ok=%v", tt.in, err, tt.ok)
			continue
		}
		if tt.ok && FormatDuration(d) != tt.out {
			t.Errorf("FormatDuration(%q) = %q, want %q", tt.in, FormatDuration(d), tt.out)
		}
	}
}

func TestTextMarshaling(t *testing.T) {
	var s Size
	if err := s.UnmarshalText([]byte("64KiB")); err != nil || s != 64*KiB {
		t.Fatalf("UnmarshalText: %v %d", err, s)
	}
	if err := s.UnmarshalText([]byte("x")); err == nil {
		t.Fatal("UnmarshalText accepted x")
	}
	var r Rate
	if err := r.UnmarshalText([]byte("20Mbps")); err != nil || r != 20*MbitPerSecond {
		t.Fatalf("UnmarshalText: %v %d", err, r)
	}
	b, _ := r.MarshalText()
	if string(b) != "20Mbps" {
		t.Fatalf("MarshalText = %s", b)
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"0", "64KiB", "100MiB", "1GiB", "1048576", "-1", "1.5MiB", "9223372036854775807", "8589934592GiB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseSize(s)
		if err != nil {
			return
		}
		if v < 0 {
			t.Fatalf("ParseSize(%q) = %d < 0", s, v)
		}
		back, err := ParseSize(v.String())
		if err != nil || back != v {
			t.Fatalf("round trip %q -> %d -> %q -> %d, %v", s, v, v.String(), back, err)
		}
	})
}

func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"20Mbps", "1Kbps", "10Gbps", "0bps", "20", "1.5Gbps", "9223372036Gbps"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseRate(s)
		if err != nil {
			return
		}
		if v < 0 {
			t.Fatalf("ParseRate(%q) = %d < 0", s, v)
		}
		back, err := ParseRate(v.String())
		if err != nil || back != v {
			t.Fatalf("round trip %q -> %d -> %q -> %d, %v", s, v, v.String(), back, err)
		}
	})
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"100ms", "2h", "120s", "1h30m", "0", "-5s", "1.5us", "9223372036854775807ns", "2562047h47m16.854775807s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			return
		}
		out := FormatDuration(d)
		back, err := ParseDuration(out)
		if err != nil || back != d {
			t.Fatalf("round trip %q -> %v -> %q -> %v, %v", s, time.Duration(d), out, back, err)
		}
	})
}
