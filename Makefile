# leadpipe: every target works on a fresh machine with Go 1.26 and make.
# One Go module at the root (github.com/leadpipe/leadpipe); these are its top-level directories.
DIRS := common ingest processor replayer devstack internal
GO ?= go
# Short fuzz budget per fuzz target during `make test`: a count, not a duration. A duration
# (-fuzztime 3s) races the fuzz coordinator's deadline on Go < 1.27 (golang/go#75804) and fails
# with a bare "context deadline exceeded" and no crasher under CPU load.
FUZZTIME ?= 8000x

.PHONY: dev emulators test test-short fuzz lint bench send-lead build tidy

## dev: run the whole pipeline locally on the embedded emulators.
dev:
	$(GO) run ./devstack/cmd/devstack up

## emulators: run only the Firestore, Pub/Sub and GCS emulators.
emulators:
	$(GO) run ./devstack/cmd/devstack emulators

## test: every package's tests with the race detector, then each fuzz target for $(FUZZTIME).
test: lint
	$(GO) test -race -count=1 -timeout 15m ./...
	@$(MAKE) --no-print-directory fuzz

## test-google: the e2e suites (ingest, processor, replayer, devstack/stack, a short loadgen run) on
## Google's own Firestore and Pub/Sub emulators (Google Cloud CLI + Java), started once for the run.
.PHONY: test-google
test-google:
	@GO=$(GO) ./devstack/test-google.sh

## test-google-external: the same suites on emulators already running (docker-compose.emulators.yml).
.PHONY: test-google-external
test-google-external:
	@GO=$(GO) ./devstack/test-google.sh --external

## fuzz: run every Fuzz* target for a short budget.
fuzz:
	@set -e; for pkg in $$($(GO) list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' ./...); do \
	  for f in $$(grep -hoE '^func (Fuzz[A-Za-z0-9_]+)' $$($(GO) list -f '{{$$d:=.Dir}}{{range .TestGoFiles}}{{$$d}}/{{.}} {{end}}{{range .XTestGoFiles}}{{$$d}}/{{.}} {{end}}' $$pkg) 2>/dev/null | awk '{print $$2}' | sed 's/(.*//'); do \
	    echo "== fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

## lint: gofmt and go vet on every module.
lint:
	@out=$$(gofmt -l $(DIRS)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

## bench: the pipeline benchmark of issue 12 on `devstack up --processes` stacks (about 5
## minutes): writes bench/results.md and bench/results.json. BENCH_ARGS="--steady=30s" for a
## quicker run (the committed results use the default 60 s), BENCH_ARGS="--only=a,f" for some.
bench:
	$(GO) run ./bench/cmd/bench $(BENCH_ARGS)

## bench-micro: every Go benchmark (go test -bench) once, printing figures.
.PHONY: bench-micro
bench-micro:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2s ./...

## send-lead: send one signed sample lead to a running `make dev` stack.
send-lead:
	@set -a; if [ -f .devstack/env ]; then . ./.devstack/env; fi; set +a; $(GO) run ./devstack/cmd/sendlead $(ARGS)

## load: benchmark the whole pipeline on an in-process stack; ARGS="--target=http://127.0.0.1:8081" for a running `make dev`.
.PHONY: load
load:
	$(GO) run ./devstack/cmd/loadgen $(ARGS)

build:
	@mkdir -p bin
	$(GO) build -o bin/ ./ingest/cmd/... ./processor/cmd/... ./replayer/cmd/... ./devstack/cmd/...

tidy:
	$(GO) mod tidy

## test-infra: infra/ through terraform (fmt, init from a local mirror of the google provider
## 8.0.0 built from the Go module proxy, validate, test), tflint, and the broken copies.
.PHONY: test-infra
test-infra:
	GO=$(GO) ./infra/check.sh
