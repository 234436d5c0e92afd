# TokMesh — build, run and test from a fresh clone.
#   make run    start a standalone node on its embedded defaults (./data, loopback)
#   make test   everything CI runs (installs what it needs first)

GO        ?= go
BIN       ?= bin
PKGS      ?= ./...
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.0.0-dev)
COMMIT    ?= $(shell git rev-parse HEAD 2>/dev/null)
DATE      ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS   := -s -w -X github.com/yndnr/tokmesh-go/internal/buildinfo.Version=$(VERSION) \
             -X github.com/yndnr/tokmesh-go/internal/buildinfo.Commit=$(COMMIT) \
             -X github.com/yndnr/tokmesh-go/internal/buildinfo.Date=$(DATE)
BINARIES  := $(notdir $(wildcard cmd/*))

# Crash-harness cycles: make test runs at least 10, make test-crash 100.
CRASH_CYCLES ?= 10

.PHONY: all build run deps test test-unit test-crash test-fuzz bench bench-memory vet fmt cross clean

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

run:
	$(GO) run ./cmd/tokmesh-server

# deps installs what the tests need on a fresh machine. Today that is only
# the Go module cache; system packages join here as tests start using them.
deps:
	$(GO) mod download

vet:
	@test -z "$$(gofmt -l cmd internal pkg 2>/dev/null)" || { echo "gofmt needed:"; gofmt -l cmd internal pkg; exit 1; }
	$(GO) vet $(PKGS)

# Platform code must not rot: vet and build for the release targets.
cross:
	GOOS=windows GOARCH=amd64 $(GO) vet $(PKGS)
	GOOS=darwin GOARCH=arm64 $(GO) vet $(PKGS)
	GOOS=windows GOARCH=amd64 $(GO) build -o /dev/null ./cmd/...
	GOOS=darwin GOARCH=arm64 $(GO) build -o /dev/null ./cmd/...

test: deps vet cross
	TOKMESH_CRASH_CYCLES=$(CRASH_CYCLES) $(GO) test -race -timeout 20m -count=1 $(PKGS)

test-unit:
	$(GO) test -short -count=1 $(PKGS)

# The long crash run: >= 100 SIGKILL/restart cycles per sync mode.
test-crash:
	TOKMESH_CRASH_CYCLES=100 $(GO) test -count=1 -timeout 60m -run 'TestCrash' -v ./internal/engine/

# Short fuzz pass over every decoder (the seed corpora live in testdata/).
FUZZTIME ?= 30s
test-fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeRecord$$' -fuzztime $(FUZZTIME) ./internal/session/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeFrame$$' -fuzztime $(FUZZTIME) ./internal/wal/
	$(GO) test -run '^$$' -fuzz '^FuzzReadSnapshot$$' -fuzztime $(FUZZTIME) ./internal/snapshot/

# Benchmarks behind docs/benchmarks.md.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2s ./internal/session/ ./internal/wal/ ./internal/snapshot/
	$(GO) test -run '^$$' -bench '^BenchmarkCreate$$' -benchtime 20000x -timeout 30m ./internal/engine/
	$(GO) test -run '^$$' -bench '^BenchmarkValidateParallel$$' -benchmem -benchtime 2s -timeout 30m ./internal/engine/
	$(GO) test -run '^$$' -bench '^BenchmarkSnapshotAndColdStart1M$$' -benchtime 1x -timeout 30m ./internal/engine/

# Heap and RSS with 1M example-shaped sessions, alone in its own process.
bench-memory:
	TOKMESH_MEMORY_TEST=1 $(GO) test -count=1 -run '^TestMemory1M$$' -v -timeout 20m ./internal/engine/

clean:
	rm -rf $(BIN)
