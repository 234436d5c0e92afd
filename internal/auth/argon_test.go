package auth

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

var phcRe = regexp.MustCompile(`^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$([A-Za-z0-9+/]{22})\$([A-Za-z0-9+/]{43})$`)

func TestHashSecret_ProducesArgon2idV19PHC(t *testing.T) {
	s := NewSecret()
	h, err := HashSecret(s, DefaultParams)
	if err != nil {
		t.Fatal(err)
	}
	m := phcRe.FindStringSubmatch(h)
	if m == nil || m[1] != "16384" || m[2] != "2" || m[3] != "2" {
		t.Fatalf("PHC %q", h)
	}
	if strings.Contains(h, s[5:]) {
		t.Fatal("hash contains the secret")
	}
	ok, err := VerifySecret(s, h)
	if err != nil || !ok {
		t.Fatalf("round trip: %v %v", ok, err)
	}
	if ok, _ := VerifySecret(NewSecret(), h); ok {
		t.Fatal("other secret verified")
	}
	h2, _ := HashSecret(s, DefaultParams)
	if h2 == h {
		t.Fatal("salt not random")
	}
}

func TestVerifySecret_ReadsParamsFromPHC(t *testing.T) {
	s := NewSecret()
	for _, p := range []Params{{8, 1, 1}, {64, 3, 2}, {256, 1, 4}} {
		h, err := HashSecret(s, p)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := ParsePHCParams(h); err != nil || got != p {
			t.Fatalf("params %v read back as %v %v", p, got, err)
		}
		if ok, err := VerifySecret(s, h); !ok || err != nil {
			t.Fatalf("%v: %v %v", p, ok, err)
		}
		// Changing the recorded cost changes the derived hash.
		other := strings.Replace(h, fmt.Sprintf("t=%d", p.Iterations), fmt.Sprintf("t=%d", p.Iterations+1), 1)
		if ok, _ := VerifySecret(s, other); ok {
			t.Fatalf("%v: verification ignored t", p)
		}
	}
}

func TestVerifySecret_RejectsTamperedHashAndSalt(t *testing.T) {
	s := NewSecret()
	h, _ := HashSecret(s, testParams)
	f := strings.Split(h, "$")
	flip := func(b64s string) string {
		b, _ := base64.RawStdEncoding.DecodeString(b64s)
		b[0] ^= 1
		return base64.RawStdEncoding.EncodeToString(b)
	}
	for name, tampered := range map[string]string{
		"hash": strings.Join(append(f[:5:5], flip(f[5])), "$"),
		"salt": strings.Join(append(f[:4:4], flip(f[4]), f[5]), "$"),
	} {
		ok, err := VerifySecret(s, tampered)
		if ok || err != nil {
			t.Errorf("tampered %s: ok=%v err=%v", name, ok, err)
		}
	}
}

func TestParsePHC_RejectsMalformed(t *testing.T) {
	good, _ := HashSecret(NewSecret(), testParams)
	f := strings.Split(good, "$")
	for name, bad := range map[string]string{
		"empty":           "",
		"argon2i":         strings.Replace(good, "argon2id", "argon2i", 1),
		"v=16":            strings.Replace(good, "v=19", "v=16", 1),
		"param order":     strings.Join([]string{"", f[1], f[2], "t=1,m=64,p=1", f[4], f[5]}, "$"),
		"leading zero":    strings.Replace(good, "m=64", "m=064", 1),
		"memory too big":  strings.Replace(good, "m=64", "m=2097152", 1),
		"iterations 0":    strings.Replace(good, "t=1", "t=0", 1),
		"parallelism 200": strings.Replace(good, "p=1", "p=200", 1),
		"padded salt":     strings.Join([]string{"", f[1], f[2], f[3], f[4] + "==", f[5]}, "$"),
		"short hash":      strings.Join([]string{"", f[1], f[2], f[3], f[4], "AAAA"}, "$"),
		"extra field":     good + "$x",
		"negative":        strings.Replace(good, "t=1", "t=-1", 1),
	} {
		if _, err := VerifySecret("x", bad); !errors.Is(err, ErrBadHash) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := HashSecret("x", Params{Memory: 4, Iterations: 1, Parallelism: 1}); err == nil {
		t.Error("memory below 8·p accepted")
	}
}

func TestVerifier_WaitsForASlotWithinTheDeadline(t *testing.T) {
	v, err := newVerifier(1, testParams)
	if err != nil {
		t.Fatal(err)
	}
	v.sem <- struct{}{} // occupy the only slot
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := v.verify(ctx, "s", v.dummy); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	done := make(chan error)
	go func() {
		_, err := v.verify(context.Background(), "s", v.dummy)
		done <- err
	}()
	time.Sleep(10 * time.Millisecond)
	<-v.sem // free it
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if v.runs.Load() != 1 {
		t.Fatalf("runs = %d", v.runs.Load())
	}
}

func TestVerifier_NeverExceedsItsSlots(t *testing.T) {
	v, _ := newVerifier(2, testParams)
	h, _ := HashSecret("s", Params{Memory: 2048, Iterations: 2, Parallelism: 1})
	errs := make(chan error, 16)
	for range 16 {
		go func() {
			_, err := v.verify(context.Background(), "s", h)
			errs <- err
		}()
	}
	for range 16 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if p := v.peak.Load(); p > 2 || p < 1 {
		t.Fatalf("peak concurrent verifications %d with 2 slots", p)
	}
	if v.runs.Load() != 16 {
		t.Fatalf("runs %d", v.runs.Load())
	}
}
