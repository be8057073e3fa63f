SHELL := /bin/bash
# straas — everything runs through these targets. `make run` and `make test` are the two
# commands of a fresh clone (see README.md).

GO      ?= go
VENV    ?= .venv
export STRAAS_VENV := $(abspath $(VENV))
# Tests and benchmarks use the project's venv for moto and aws-sam-cli, never a global one.
PYTOOLS := $(VENV)/.installed-moto
# aws-sam-cli has its own venv: installed beside moto it would downgrade boto3 under it.
SAM     := $(VENV)/sam/bin/sam
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
	$(VENV)/bin/pip install --quiet --disable-pip-version-check "moto[server]>=5.2.5"
	touch $@

$(SAM):
	python3 -m venv $(VENV)/sam
	$(VENV)/sam/bin/pip install --quiet --disable-pip-version-check aws-sam-cli

tools: $(PYTOOLS) $(SAM) ## install what the tests need: Go modules, moto and aws-sam-cli (into .venv)
	$(GO) mod download

test: tools lint test-go test-sam fuzz ## everything CI runs: lint, all Go tests (unit, contract, e2e, AWS endpoint suite on moto), SAM, fuzzing

lint: ## gofmt and go vet
	@out="$$(gofmt -l $$(git ls-files '*.go'))"; if [ -n "$$out" ]; then echo "gofmt wants:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

test-go: tools ## all Go tests with -race; the AWS suite starts (and stops) moto itself
	$(GO) test -race -count=1 -timeout 25m ./...

test-aws: tools ## the AWS-endpoint suites (adapters, Lambda handlers, template) against AWS_ENDPOINT_URL, or a moto they start
	$(GO) test -race -count=1 -v ./test/aws/ ./test/lambda/... ./test/sam/... 2>&1 | tee /tmp/straas-test-aws.log | grep -E '^(--- FAIL|FAIL|ok|PASS)|moto' ; \
	  test $${PIPESTATUS[0]} -eq 0

test-sam: tools ## sam validate --lint and sam build of every function (no Docker)
	SAM_CLI_TELEMETRY=0 $(SAM) validate --lint
	SAM_CLI_TELEMETRY=0 GOFLAGS="-trimpath -ldflags=-s" $(SAM) build

FUZZ_API := FuzzDecodeCreateTopology FuzzRequest
FUZZ_ASL := FuzzLoad FuzzExecutionInput FuzzPathsAndIntrinsics
fuzz: ## fuzz request decoding/validation and the ASL interpreter's input handling, FUZZTIME each
	@set -e; for f in $(FUZZ_API); do $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) ./shared/api; done
	@set -e; for f in $(FUZZ_ASL); do $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) ./shared/asl; done

bench: $(PYTOOLS) ## run the benchmark scenarios (installs moto for scenario 8); QUICK=1 for small sizes; writes bench/results.json
	$(GO) run ./bench $(if $(QUICK),-quick,)

clean: ## remove build outputs and local state
	rm -rf bin .aws-sam .straas
