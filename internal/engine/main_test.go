package engine

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(crashChildEnv) != "" {
		runCrashChild()
		return
	}
	if dir := os.Getenv(coldChildEnv); dir != "" {
		runColdChild(dir)
		return
	}
	goleak.VerifyTestMain(m)
}
