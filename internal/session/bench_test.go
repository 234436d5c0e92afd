package session

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

func benchToken(i int) string { return fmt.Sprintf("tmtk_%043d", i) }

var benchStore struct {
	once sync.Once
	st   *Store
	n    int
	toks []string
}

// validateStore returns a store with 1,000,000 example-shaped sessions
// (100,000 with -short), built once per test binary.
func validateStore(b *testing.B) (*Store, []string) {
	benchStore.once.Do(func() {
		n := 1_000_000
		if testing.Short() {
			n = 100_000
		}
		st, err := NewStore(Config{})
		if err != nil {
			b.Fatal(err)
		}
		now := st.now()
		uas := []string{"Mozilla/5.0 (X11; Linux x86_64)", "curl/8.5.0", "okhttp/4.12"}
		toks := make([]string, n)
		for i := 0; i < n; i++ {
			toks[i] = benchToken(i)
			s := exampleShaped(i, 256, uas)
			s.TokenHash = HashToken(toks[i])
			s.ID, _ = NewID(s.TokenHash.Partition(256), s.TokenHash[2], now)
			s.CreatedAt, s.LastActive, s.ExpiresAt = now, now, now+3_600_000
			if err := st.LoadSession(s); err != nil {
				b.Fatal(err)
			}
		}
		benchStore.st, benchStore.toks, benchStore.n = st, toks, n
	})
	return benchStore.st, benchStore.toks
}

func BenchmarkValidateParallel(b *testing.B) {
	st, toks := validateStore(b)
	var seed atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		x := seed.Add(0x9E3779B97F4A7C15)
		for pb.Next() {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			if _, _, err := st.Validate(toks[x%uint64(len(toks))], false, ipA, ""); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(len(toks)), "sessions")
}

func BenchmarkValidateTouchParallel(b *testing.B) {
	st, toks := validateStore(b)
	var seed atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		x := seed.Add(0x9E3779B97F4A7C15)
		for pb.Next() {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			if _, _, err := st.Validate(toks[x%uint64(len(toks))], true, ipA, "curl/8.5.0"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

type nopJournal struct{ seq atomic.Uint64 }

func (j *nopJournal) Record(*Record) uint64 { return j.seq.Add(1) }

func BenchmarkCreate(b *testing.B) {
	st, err := NewStore(Config{Journal: &nopJournal{}})
	if err != nil {
		b.Fatal(err)
	}
	data := map[string]string{"tenant": "acme", "role": "admin", "region": "eu-west-1", "plan": "pro", "locale": "en-US", "theme": "dark"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, err := st.Create(CreateRequest{
			UserID: "u-" + strconv.Itoa(i%100_000), Data: data, IP: ipA,
			UserAgent: "Mozilla/5.0 (X11; Linux x86_64)", CreatedBy: "LOCAL_ADMIN",
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCreateParallel(b *testing.B) {
	st, err := NewStore(Config{Journal: &nopJournal{}, MaxPerUser: 10000})
	if err != nil {
		b.Fatal(err)
	}
	var n atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			if _, err := st.Create(CreateRequest{UserID: "u-" + strconv.Itoa(int(i%100_000)), IP: ipA, CreatedBy: "LOCAL_ADMIN"}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkAppendJSON(b *testing.B) {
	s := exampleSession()
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf = s.AppendJSON(buf[:0])
	}
}

func TestValidate_HotPathDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	e := newEnv(t, nil)
	tok := token(1)
	e.create(CreateRequest{Token: tok, Data: map[string]string{"a": "b"}})
	allocs := testing.AllocsPerRun(1000, func() {
		if _, _, err := e.st.Validate(tok, false, ipA, ""); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Validate allocates %v times", allocs)
	}
	allocs = testing.AllocsPerRun(1000, func() { e.st.Get(ID{1}) })
	if allocs != 0 {
		t.Fatalf("Get allocates %v times", allocs)
	}
}
