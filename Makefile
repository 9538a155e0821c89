# snap2dsql: `make demo` rehearses the storefront migration locally; `make test` runs the suite.
# `make bench` prints load figures (never run by `make test`).
# Each installs what it needs, and only that (scripts/deps.sh demo|all), and is safe to run again.
SHELL := /bin/bash
export CARGO_TARGET_DIR ?= $(HOME)/.cache/snap2dsql-target
CARGO ?= cargo
CUSTOMERS ?= 10000
ORDERS ?= 100000

.PHONY: deps deps-demo build build-release test lint demo bench bench-connections clean check-infra reliability fuzz check-cdk

# Everything: the demo's needs, plus the AWS emulator, the deployment tools and the npm checks.
deps:
	@bash scripts/deps.sh all

# The CLI's build and the local rehearsal only: libclang, the PostgreSQL server and client.
deps-demo:
	@bash scripts/deps.sh demo

# The CLI for the demo, in the dev profile: the demo's 110,000 rows take seconds unoptimised, the
# build is minutes shorter than --release, and `make test` reuses it (see README, "Two commands").
build: deps-demo
	$(CARGO) build -p snap2dsql-cli

# The optimised CLI, for the benchmark.
build-release: deps-demo
	$(CARGO) build --release -p snap2dsql-cli

lint: deps
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# The suite: format and lint, the offline infra checks (SAM, cfn-lint, IAM names, ASL,
# checkov), then every Rust test (the end-to-end pipeline runs on emulated AWS).
test: deps lint check-infra check-cdk
	$(CARGO) build --workspace --bins
	$(CARGO) test --workspace

demo: build
	CUSTOMERS=$(CUSTOMERS) ORDERS=$(ORDERS) bash scripts/demo.sh

# Figures, not a test: snap2dsql beside psql's binary \copy and Glue-style INSERT batches, and its
# peak memory on a small and a ~1 GiB part file (scripts/bench.sh); then, through the DSQL
# stand-in with a 50 ms commit latency, rows/s at 1, 4, 16 and 64 connections against the
# latency's bound, and each load format's rows/s and client CPU a row (bench-connections).
# Sizes and knobs: see each script.
bench: build-release
	bash scripts/bench.sh
	bash scripts/bench/connections.sh

# The second part of `make bench` alone (ORDERS=500000 by default).
bench-connections: build-release
	bash scripts/bench/connections.sh

# The fault suite at full size (make test runs 2 runs a case), through the DSQL stand-in: SIGKILLs,
# dropped connections, injected conflicts, a server restart, the connection limit, rate and age,
# the transaction age limit, silent connections; 20 runs each; prints the table.
FAULT_RUNS ?= 20
reliability: deps
	$(CARGO) build --workspace --bins
	SNAP2DSQL_FAULT_RUNS=$(FAULT_RUNS) $(CARGO) test -p snap2dsql-tests --test it reliability:: -- --nocapture

# Fuzz the string-to-value parsers for FUZZ_SECONDS (not in CI; the tests replay the corpus).
# Needs cargo-fuzz (`cargo install cargo-fuzz`); RUSTC_BOOTSTRAP lets the stable toolchain take
# the sanitizer flags. New corpus entries land in fuzz/corpus/parse_text, crashes in
# fuzz/artifacts/parse_text (copy them to fuzz/regressions/parse_text once fixed).
FUZZ_SECONDS ?= 300
fuzz:
	command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
	RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=$(CARGO_TARGET_DIR)/fuzz cargo fuzz run parse_text fuzz/corpus/parse_text -- -max_total_time=$(FUZZ_SECONDS) -max_len=256

clean:
	rm -rf .work

# Offline checks of the AWS deployment (SAM template, IAM action names, ASL, checkov).
check-infra: deps
	bash scripts/infra-check.sh

# Offline checks of the CDK construct (infra/cdk): npm ci, `cdk synth` into infra/cdk/cdk.out/,
# the tests (template assertions, parity with infra/template.yaml), cfn-lint and checkov.
check-cdk: deps
	bash scripts/cdk-check.sh
