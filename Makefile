SHELL := /bin/bash
# straas — everything runs through these targets. `make run` and `make test` are the two
# commands of a fresh clone (see README.md).

GO      ?= go
VENV    ?= .venv
export STRAAS_VENV := $(abspath $(VENV))
# Tests and benchmarks use the project's venv for moto and aws-sam-cli, never a global one.
PYTOOLS := $(VENV)/.installed-2
FUZZTIME ?= 15s

.PHONY: help run build test lint test-go test-aws test-sam fuzz bench tools clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

run: ## run the embedded control plane with the mock cloud (straas up)
	$(GO) run ./cmd/straas up $(ARGS)

build: ## build bin/straas and bin/mockcn
	$(GO) build -o bin/straas ./cmd/straas
	$(GO) build -o bin/mockcn ./cmd/mockcn

$(PYTOOLS):
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check "moto[server]>=5.2.5" aws-sam-cli cfn-lint
	touch $@

tools: $(PYTOOLS) ## install what the tests need: Go modules, moto, aws-sam-cli (into .venv)
	$(GO) mod download

test: tools lint test-go test-sam fuzz ## everything CI runs: lint, all Go tests (unit, contract, e2e, AWS endpoint suite on moto), SAM, fuzzing

lint: ## gofmt and go vet
	@out="$$(gofmt -l $$(git ls-files '*.go'))"; if [ -n "$$out" ]; then echo "gofmt wants:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

test-go: tools ## all Go tests with -race; the AWS suite starts (and stops) moto itself
	$(GO) test -race -count=1 -timeout 25m ./...

test-aws: tools ## the AWS adapters' contract suite against AWS_ENDPOINT_URL, or a moto it starts
	$(GO) test -race -count=1 -v ./test/aws/ 2>&1 | tee /tmp/straas-test-aws.log | grep -E '^(--- FAIL|FAIL|ok|PASS)|moto' ; \
	  test $${PIPESTATUS[0]} -eq 0

test-sam: tools ## sam validate --lint and sam build of every function
	@if [ -f template.yaml ]; then $(VENV)/bin/sam validate --lint && $(VENV)/bin/sam build --parallel --cached; else echo "no template.yaml yet"; exit 1; fi

fuzz: ## fuzz request decoding and the ASL interpreter's input handling, briefly
	@echo "fuzz targets: none yet"

bench: ## run the benchmark scenarios; QUICK=1 for small sizes; writes bench/results.json
	$(GO) run ./bench $(if $(QUICK),-quick,)

clean: ## remove build outputs and local state
	rm -rf bin .aws-sam .straas
