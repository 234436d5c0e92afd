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

.PHONY: all build run deps lint test test-unit test-crash test-fuzz fuzz cover bench bench-report bench-memory pgo vet fmt cross release-check clean

# Coverage gate of 10-packaging §1 (whole module, statements).
COVER_MIN ?= 80

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

run:
	$(GO) run ./cmd/tokmesh-server

# deps installs what the tests need on a fresh machine: the Go modules,
# redis-cli (Debian redis-tools) for the scripted RESP session test and tmux
# for the end-to-end test of tokmesh-cli top.
DEB_DEPS := redis-cli:redis-tools tmux:tmux
deps:
	$(GO) mod download
	@missing=""; for d in $(DEB_DEPS); do command -v $${d%%:*} >/dev/null 2>&1 || missing="$$missing $${d##*:}"; done; \
	  if [ -n "$$missing" ]; then \
	    if command -v apt-get >/dev/null 2>&1; then \
	      (apt-get update -qq && apt-get install -y -qq $$missing) || { echo "deps: installing$$missing failed"; exit 1; }; \
	    else echo "deps: missing$$missing and no apt-get; the tests that need them will be skipped"; fi; fi

lint: vet
vet:
	@test -z "$$(gofmt -l cmd internal pkg packaging scripts 2>/dev/null)" || { echo "gofmt needed:"; gofmt -l cmd internal pkg packaging scripts; exit 1; }
	$(GO) vet $(PKGS)

# Platform code must not rot: vet and build for the release targets.
# (-pgo=off: a compile check; a profile-guided build of every dependency
# for two more platforms would add minutes and check nothing more.)
cross:
	GOOS=windows GOARCH=amd64 $(GO) vet $(PKGS)
	GOOS=darwin GOARCH=arm64 $(GO) vet $(PKGS)
	GOOS=windows GOARCH=amd64 $(GO) build -pgo=off -o /dev/null ./cmd/...
	GOOS=darwin GOARCH=arm64 $(GO) build -pgo=off -o /dev/null ./cmd/...

# make test = what CI runs: lint, cross-compile check, every test with the
# race detector (incl. 10 SIGKILL crash cycles per sync mode), the coverage
# gate, and goreleaser check. Tests build without the server's profile
# (GOFLAGS=-pgo=off, also for the binaries the end-to-end tests build): PGO
# changes code layout, not behaviour, and test-package runs the
# profile-guided release build.
test: deps lint cross
	GOFLAGS=-pgo=off TOKMESH_CRASH_CYCLES=$(CRASH_CYCLES) $(GO) test -race -covermode=atomic -coverprofile=cover.out -timeout 20m -count=1 $(PKGS)
	@$(MAKE) --no-print-directory cover-check
	@$(MAKE) --no-print-directory release-check

cover:
	$(GO) test -covermode=atomic -coverprofile=cover.out -count=1 $(PKGS)
	@$(MAKE) --no-print-directory cover-check

cover-check:
	@total=$$($(GO) tool cover -func=cover.out | awk '/^total:/ {sub("%","",$$3); print $$3}'); \
	  echo "coverage: $$total% (gate $(COVER_MIN)%)"; \
	  awk -v t=$$total -v m=$(COVER_MIN) 'BEGIN { exit !(t >= m) }' || { echo "coverage below $(COVER_MIN)%"; exit 1; }

# goreleaser check (the release configuration stays valid). The first run
# builds goreleaser from the Go module proxy into ./bin (minutes, cached after).
release-check: $(BIN)/goreleaser
	$(BIN)/goreleaser check

fuzz: test-fuzz

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
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeStrict$$' -fuzztime $(FUZZTIME) ./internal/httpapi/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeStrictFastPath$$' -fuzztime $(FUZZTIME) ./internal/httpapi/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeValidate$$' -fuzztime $(FUZZTIME) ./internal/httpapi/
	$(GO) test -run '^$$' -fuzz '^FuzzLoaderApplyRecord$$' -fuzztime $(FUZZTIME) ./internal/session/
	$(GO) test -run '^$$' -fuzz '^FuzzChunkPlaintext$$' -fuzztime $(FUZZTIME) ./internal/snapshot/
	$(GO) test -run '^$$' -fuzz '^FuzzAppendLine$$' -fuzztime $(FUZZTIME) ./internal/audit/
	$(GO) test -run '^$$' -fuzz '^FuzzFramer$$' -fuzztime $(FUZZTIME) ./internal/respapi/

# Benchmarks behind docs/benchmarks.md.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2s ./internal/session/ ./internal/wal/ ./internal/snapshot/
	$(GO) test -run '^$$' -bench '^BenchmarkCreate$$' -benchtime 20000x -timeout 30m ./internal/engine/
	$(GO) test -run '^$$' -bench '^BenchmarkValidateParallel$$' -benchmem -benchtime 2s -timeout 30m ./internal/engine/
	$(GO) test -run '^$$' -bench '^BenchmarkSnapshotAndColdStart1M$$' -benchtime 5x -timeout 30m ./internal/engine/
	$(GO) test -run '^$$' -bench 'EncodeLine|HTTPValidateHandler' -benchmem -benchtime 2s ./internal/audit/ ./internal/server/

# Regenerate cmd/tokmesh-server/default.pgo, the CPU profile go build uses
# for tokmesh-server (profile-guided optimisation; ~1.5 min, 2 CPUs).
pgo:
	scripts/pgo.sh

# TokMesh vs Redis side by side with tokmesh-bench (both servers on CPU 0,
# the bench on CPU 1); rewrites the generated section of docs/benchmarks.md.
# ~5 min; needs redis-server, taskset and 2 CPUs. Run on a quiet machine.
bench-report:
	scripts/bench-report.sh

# Heap and RSS with 1M example-shaped sessions, alone in its own process.
bench-memory:
	TOKMESH_MEMORY_TEST=1 $(GO) test -count=1 -run '^TestMemory1M$$' -v -timeout 20m ./internal/engine/

clean:
	rm -rf $(BIN)

# --- Release packaging (10-packaging; packaging/README.md) -----------------
# goreleaser is pinned and built from the Go module proxy into ./bin.
GORELEASER_VERSION ?= v2.15.1
GORELEASER         ?= $(BIN)/goreleaser

.PHONY: goreleaser package test-package docker

goreleaser: $(GORELEASER)

$(GORELEASER):
	@mkdir -p $(BIN)
	GOBIN=$(abspath $(BIN)) $(GO) install github.com/goreleaser/goreleaser/v2@$(GORELEASER_VERSION)

# Snapshot release into dist/: archives, checksums, .deb, .rpm, then the .msi
# (wixl). Needs wixl (Debian package wixl) for the .msi step.
package: $(GORELEASER)
	GORELEASER=$(GORELEASER) scripts/package.sh

# Builds the snapshot release and inspects/runs what it produced.
test-package: $(GORELEASER)
	GORELEASER=$(GORELEASER) scripts/test-package.sh

# Container image (needs a Docker engine; none runs on the CI machines).
docker:
	docker build -f packaging/Dockerfile -t tokmesh-server:$(VERSION) .
