package session

import (
	"testing"

	"go.uber.org/goleak"
)

// The store starts no goroutines; tests that do must join them.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
