# cutover — run `make help` to see the targets.
GO ?= go
BUF := $(GO) tool -modfile=tools/go.mod buf
BIN := bin

.PHONY: help build etcd generate check-generate lint test test-short test-faults fuzz fuzz-short bench bench-switch bench-fleet bench-etcd bench-failover demo demo-ha clean

help: ## show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  %-16s %s\n", $$1, $$2}'

build: ## build the three binaries into ./bin
	$(GO) build -o $(BIN)/ ./cmd/...

# The etcd server the etcd tests start (internal/etcdcluster), pinned in
# tools/etcd/go.mod and built from the Go module proxy: etcd's own module
# cannot be `go install`ed (its go.mod has replace directives).
ETCD_VERSION := v3.7.3
ETCD_BIN ?= $(shell $(GO) env GOPATH)/bin/etcd

etcd: ## build the pinned etcd server into ETCD_BIN ($(GOPATH)/bin/etcd), for the tests on etcd
	@if "$(ETCD_BIN)" --version 2>/dev/null | grep -q "etcd Version: $(ETCD_VERSION:v%=%)$$"; then \
		echo "etcd $(ETCD_VERSION) is already at $(ETCD_BIN)"; else \
		echo "make etcd: building etcd $(ETCD_VERSION) from tools/etcd/go.mod into $(ETCD_BIN)"; \
		echo "(the first time Go downloads and compiles etcd's modules: about a minute on 2 cores, silently)"; \
		$(GO) build -C tools/etcd -o "$(ETCD_BIN)" go.etcd.io/etcd/server/v3 && "$(ETCD_BIN)" --version | head -1; fi

generate: ## regenerate Go code from proto/ (buf + local plugins, pinned in tools/go.mod)
	$(BUF) generate

check-generate: generate ## regenerate and fail if the committed code differs
	git diff --exit-code -- proto/

lint: ## buf lint, go vet, gofmt
	$(BUF) lint
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)

test: ## run every test, with the race detector (e2e included)
	$(GO) test -race -count=1 -timeout 15m ./...

# The randomized fault suite (e2e/faults): `make test` runs it short (its
# defaults: 3 runs from seed 1, up to 2 deployments and 4 faults each,
# every kind but hang-agent, which takes a minute); this runs FAULT_RUNS
# runs from FAULT_SEED with every fault kind, up to 3 deployments and 6
# faults each. A failing run prints its seed and fault schedule; replay it
# with FAULT_SEED=N FAULT_RUNS=1.
FAULT_SEED ?= 1
FAULT_RUNS ?= 20
FAULT_KINDS ?= all

test-faults: ## randomized fault suite, long: FAULT_RUNS runs (20) from FAULT_SEED (1), FAULT_KINDS (all)
	$(GO) test -race -count=1 -timeout 120m -v -run TestFaults ./e2e/faults -args -seed $(FAULT_SEED) -runs $(FAULT_RUNS) -kinds $(FAULT_KINDS) -deployments 3 -faults 6

# Every native fuzz target (func FuzzXxx in a _test.go file) is found anew
# on each run, so targets that land later are fuzzed without an edit here.
# `go test -fuzz` takes one target of one package per run: hence the loop.
# A failing input is written to the package's testdata/fuzz/FuzzXxx/;
# commit it with the fix, and it runs with `make test` from then on.
FUZZTIME ?= 60s
FUZZ_TARGETS = $$(grep -rl --include='*_test.go' '^func Fuzz' . | sort | while read -r f; do \
	sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$$f" | sed "s|^|./$$(dirname "$${f\#./}") |"; done)

fuzz: ## run every Go fuzz target for FUZZTIME each (default 60s; or a count, e.g. 100000x)
	@targets="$(FUZZ_TARGETS)"; test -n "$$targets" || { echo "no fuzz targets found"; exit 1; }; \
	echo "$$targets" | { failed=; while read -r pkg target; do \
		echo "=== fuzz $$pkg $$target for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) "$$pkg" </dev/null || failed="$$failed $$pkg:$$target"; \
	done; test -z "$$failed" || { echo "=== fuzzing failed:$$failed (inputs in each package's testdata/fuzz/)"; exit 1; }; }

# fuzz-short counts executions, not seconds: a duration makes go1.26's fuzz
# coordinator fail now and then with "context deadline exceeded" and no
# failing input when the machine is loaded (golang/go#75804, fixed in Go
# 1.27; CI hit it on FuzzLoad); a count has no deadline to race.
FUZZ_SHORT ?= 10000x

fuzz-short: ## run every Go fuzz target for FUZZ_SHORT executions each (default 10000x; CI)
	@$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZ_SHORT)

BENCH_SIZE ?= 1GiB
BENCH_AGENTS ?= 10
# BENCH_LATENCY_STAGE_RATE caps the latency figure's prepares (the
# environment's stage_rate, e.g. 64MiB): what the cap buys the served app.
BENCH_LATENCY_STAGE_RATE ?= 0
# BENCH_PROFILE, a directory, receives CPU profiles and execution traces of
# the controller and one agent during the first-release and v2 prepares
# (go tool pprof FILE.cpu.pprof; go tool trace FILE.trace).
BENCH_PROFILE ?=

bench: build ## measure release transfer with a real controller and agents (BENCH_SIZE=128MiB for a quick run)
	$(GO) run ./cmd/cutover-bench -bin $(BIN) -size $(BENCH_SIZE) -agents $(BENCH_AGENTS) -latency-stage-rate $(BENCH_LATENCY_STAGE_RATE) -profile "$(BENCH_PROFILE)"

SWITCH_REPS ?= 10

bench-switch: ## stage 2 under a continuous probe, with run.listen and without, SWITCH_REPS (10) continues each, 3 front-ends
	$(GO) build -o $(BIN)/ ./cmd/... ./examples/listen
	$(GO) run ./cmd/cutover-bench -mode switch -bin $(BIN) -reps $(SWITCH_REPS)

ETCD_REPS ?= 20

bench-etcd: ## stage 2 wall time on etcd ÷ on bbolt, same run: ETCD_REPS (20) deployments each, 3 agents, 3-member etcd (needs etcd: make etcd)
	CUTOVER_E2E_RACE=0 $(GO) test -count=1 -run '^$$' -bench BenchmarkStage2EtcdOverBbolt -benchtime $(ETCD_REPS)x -timeout 30m ./e2e

FAILOVER_RUNS ?= 10
FAILOVER_TTL ?= 0

bench-failover: ## leader killed → new leader serving, every agent reconnected: FAILOVER_RUNS (10) runs, p50 and max, FAILOVER_TTL (0: the default 10s); 3 controllers, 3-member etcd (needs etcd: make etcd)
	CUTOVER_E2E_RACE=0 $(GO) test -count=1 -run '^$$' -bench BenchmarkFailover -benchtime $(FAILOVER_RUNS)x -timeout 30m ./e2e -args -failover-ttl $(FAILOVER_TTL)

# FLEET_AGENTS: fleet sizes, comma-separated, each measured with a fresh
# controller after a baseline of 10 agents; the series stops at the first
# size that fails. The simulated agents keep their data on /dev/shm.
FLEET_AGENTS ?= 1000

# PEER_AGENTS, PEER_RELEASE and PEER_EGRESS: the peer figures' fleet size,
# release size (random data) and controller cap (--max-egress).
PEER_AGENTS ?= 50
PEER_RELEASE ?= 64MiB
PEER_EGRESS ?= 50MiB

bench-fleet: build ## measure the controller with simulated agents: F1–F3 of issue 15 (FLEET_AGENTS=1000; 10000 runs in two cutover-fleetsim processes, ~4 min), then peers F4–F6 (PEER_AGENTS=50 PEER_RELEASE=64MiB)
	$(GO) run ./cmd/cutover-fleetbench -bin $(BIN) -agents $(FLEET_AGENTS) -peer-agents $(PEER_AGENTS) -release $(PEER_RELEASE) -max-egress $(PEER_EGRESS)

demo: ## build, then deploy examples/hello to three local agents in two stages, with TLS, tokens and roles
	@echo "make demo: building the binaries into $(BIN)/ (the first time, Go downloads the modules and compiles"
	@echo "gRPC and SQLite: a few minutes, silently; later builds take seconds)"
	$(GO) build -o $(BIN)/ ./cmd/...
	$(BIN)/cutover-demo -bin $(BIN)

demo-ha: etcd ## build, then three etcd members, three controllers, three agents: the leader is killed during v2's stage 2 and another finishes it
	@echo "make demo-ha: building the binaries into $(BIN)/ (the first time, Go downloads the modules and compiles"
	@echo "gRPC, SQLite and etcd's client: a few minutes, silently; later builds take seconds)"
	$(GO) build -o $(BIN)/ ./cmd/...
	CUTOVER_ETCD="$(ETCD_BIN)" $(BIN)/cutover-demo -bin $(BIN) -ha

clean: ## remove build output
	rm -rf $(BIN)
