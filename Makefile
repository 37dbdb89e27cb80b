# leadpipe: every target works on a fresh machine with Go 1.26 and make.
MODULES := common ingest processor replayer devstack
GO ?= go
# Short fuzz budget per fuzz target during `make test`.
FUZZTIME ?= 3s

.PHONY: dev emulators test test-short fuzz lint bench send-lead build tidy

## dev: run the whole pipeline locally on the embedded emulators.
dev:
	$(GO) run ./devstack/cmd/devstack up

## emulators: run only the Firestore, Pub/Sub and GCS emulators.
emulators:
	$(GO) run ./devstack/cmd/devstack emulators

## test: every module's tests with the race detector, then each fuzz target for $(FUZZTIME).
test: lint
	@set -e; for m in $(MODULES); do echo "== $$m"; (cd $$m && $(GO) test -race -count=1 -timeout 15m ./...); done
	@$(MAKE) --no-print-directory fuzz

## fuzz: run every Fuzz* target for a short budget.
fuzz:
	@set -e; for m in $(MODULES); do \
	  for pkg in $$(cd $$m && $(GO) list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' ./...); do \
	    for f in $$(cd $$m && grep -hoE '^func (Fuzz[A-Za-z0-9_]+)' $$($(GO) list -f '{{$$d:=.Dir}}{{range .TestGoFiles}}{{$$d}}/{{.}} {{end}}{{range .XTestGoFiles}}{{$$d}}/{{.}} {{end}}' $$pkg) 2>/dev/null | awk '{print $$2}' | sed 's/(.*//'); do \
	      echo "== fuzz $$pkg $$f"; (cd $$m && $(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) $$pkg); \
	    done; \
	  done; \
	done

## lint: gofmt and go vet on every module.
lint:
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) vet ./...); done

## bench: every benchmark once, printing figures.
bench:
	@set -e; for m in $(MODULES); do echo "== $$m"; (cd $$m && $(GO) test -run '^$$' -bench . -benchmem -benchtime 2s ./...); done

## send-lead: send one signed sample lead to a running `make dev` stack.
send-lead:
	@set -a; if [ -f .devstack/env ]; then . ./.devstack/env; fi; set +a; $(GO) run ./devstack/cmd/sendlead $(ARGS)

## load: benchmark the whole pipeline on an in-process stack; ARGS="--target=http://127.0.0.1:8081" for a running `make dev`.
.PHONY: load
load:
	$(GO) run ./devstack/cmd/loadgen $(ARGS)

build:
	@mkdir -p bin
	@set -e; for m in ingest processor replayer devstack; do (cd $$m && $(GO) build -o ../bin/ ./cmd/...); done

tidy:
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) mod tidy); done
