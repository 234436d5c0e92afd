package server

import (
	"net/netip"
	"testing"

	"github.com/yndnr/tokmesh-go/internal/config"
	"github.com/yndnr/tokmesh-go/internal/engine"
	"github.com/yndnr/tokmesh-go/internal/session"
)

// BenchmarkValidateEngineHooks is what the metric hooks add to one
// validation in the engine, the path HTTP, RESP and the admin socket share
// (hooks=on is what a node with metrics installs): the validate hot path
// must stay one pre-resolved counter increment, without allocation.
func BenchmarkValidateEngineHooks(b *testing.B) {
	for _, mode := range []string{"hooks=off", "hooks=on"} {
		b.Run(mode, func(b *testing.B) {
			c := config.Default()
			c.Storage.DataDir = b.TempDir()
			s := New(c, Options{Getenv: testEnv})
			ec, err := EngineConfig(c)
			if err != nil {
				b.Fatal(err)
			}
			ec.Getenv, ec.SweepInterval, ec.SnapshotOnClose = testEnv, -1, false
			if mode == "hooks=on" {
				s.observeEngine(&ec)
			}
			e, err := engine.Open(ec)
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			res, err := e.Create(session.CreateRequest{UserID: "u-bench", Data: map[string]string{"tenant": "acme"}})
			if err != nil {
				b.Fatal(err)
			}
			ip := netip.MustParseAddr("127.0.0.1")
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := e.Validate(res.Token, false, ip, ""); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkValidationHook is the hook alone: the outcome's pre-resolved
// series and one counter increment.
func BenchmarkValidationHook(b *testing.B) {
	s := New(config.Default(), Options{})
	var ec engine.Config
	s.observeEngine(&ec)
	b.ReportAllocs()
	for i := range b.N {
		if i&1 == 0 {
			ec.OnValidate(nil)
		} else {
			ec.OnValidate(session.ErrNotFound)
		}
	}
}
