# cutover — run `make help` to see the targets.
GO ?= go
BUF := $(GO) tool -modfile=tools/go.mod buf
BIN := bin

.PHONY: help build generate check-generate lint test test-short bench demo clean

help: ## show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  %-16s %s\n", $$1, $$2}'

build: ## build the three binaries into ./bin
	$(GO) build -o $(BIN)/ ./cmd/...

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

BENCH_SIZE ?= 1GiB
BENCH_AGENTS ?= 10

bench: build ## measure release transfer with a real controller and agents (BENCH_SIZE=128MiB for a quick run)
	$(GO) run ./cmd/cutover-bench -bin $(BIN) -size $(BENCH_SIZE) -agents $(BENCH_AGENTS)

demo: ## build, then deploy examples/hello to three local agents in two stages, with TLS, tokens and roles
	@echo "make demo: building the binaries into $(BIN)/ (the first time, Go downloads the modules and compiles"
	@echo "gRPC and SQLite: a few minutes, silently; later builds take seconds)"
	$(GO) build -o $(BIN)/ ./cmd/...
	$(BIN)/cutover-demo -bin $(BIN)

clean: ## remove build output
	rm -rf $(BIN)
