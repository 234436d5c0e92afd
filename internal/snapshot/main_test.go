package snapshot

import (
	"testing"

	"go.uber.org/goleak"
)

// The reader hashes large chunks in a background goroutine; every test must
// end with none left.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
