# snap2dsql: `make demo` rehearses the storefront migration locally; `make test` runs the suite.
# `make bench` prints load figures (never run by `make test`).
# All install what they need (scripts/deps.sh) and are safe to run again.
SHELL := /bin/bash
export CARGO_TARGET_DIR ?= $(HOME)/.cache/snap2dsql-target
CARGO ?= cargo
CUSTOMERS ?= 10000
ORDERS ?= 100000

.PHONY: deps build test lint demo bench clean check-infra reliability

deps:
	@bash scripts/deps.sh

build: deps
	$(CARGO) build --release -p snap2dsql-cli

lint: deps
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# The suite: format and lint, the offline infra checks (SAM, cfn-lint, IAM names, ASL,
# checkov), then every Rust test (the end-to-end pipeline runs on emulated AWS).
test: deps lint check-infra
	$(CARGO) build --workspace --bins
	$(CARGO) test --workspace

demo: build
	CUSTOMERS=$(CUSTOMERS) ORDERS=$(ORDERS) bash scripts/demo.sh

# Figures, not a test: snap2dsql beside psql's binary \copy and Glue-style INSERT batches, and its
# peak memory on a small and a ~1 GiB part file. Sizes and knobs: see scripts/bench.sh.
bench: build
	bash scripts/bench.sh

# The fault suite at full size (make test runs 2 runs a case): SIGKILLs, dropped connections,
# injected conflicts, a server restart, 20 runs each; prints the table.
FAULT_RUNS ?= 20
reliability: deps
	$(CARGO) build --workspace --bins
	SNAP2DSQL_FAULT_RUNS=$(FAULT_RUNS) $(CARGO) test -p snap2dsql-tests --test it reliability:: -- --nocapture

clean:
	rm -rf .work

# Offline checks of the AWS deployment (SAM template, IAM action names, ASL, checkov).
check-infra: deps
	bash scripts/infra-check.sh
