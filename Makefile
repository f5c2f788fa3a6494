# The two commands of the README: `make run` and `make test`.
# Everything else here is a step those two take.

CARGO ?= cargo
export CARGO_TERM_PROGRESS_WHEN = auto

.PHONY: run test test-long soak-short setup-run setup-test host guests guests-polyglot lint test-rust test-js test-python-clients test-sdk test-polyglot deps-js fuzz fuzz-smoke

# Cargo's output folder (CARGO_TARGET_DIR when set): where the host binary the JS
# suites spawn lands. Guests always build under target/ (scripts/build-guests.sh).
CARGO_OUT := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
HOST_BIN := $(CARGO_OUT)/debug/rtm-host
GUESTS := $(CURDIR)/target/wasm-guests/artifacts
RUN_PLUGINS := $(CURDIR)/target/run-plugins

## Build and run the host on :3000 with the chat plugin (embedded memory store; set
## REDIS_URL for Redis; PLUGINS_DIR to serve your own folder instead).
run: setup-run guests
	mkdir -p $(RUN_PLUGINS)
	cp $(GUESTS)/chat-v1.wasm $(RUN_PLUGINS)/chat.wasm
	PLUGINS_DIR=$${PLUGINS_DIR:-$(RUN_PLUGINS)} $(CARGO) run --release -p rtm-host

## Every Rust plugin and test guest, built from source for wasm32-wasip2.
guests: setup-run
	scripts/build-guests.sh

## Every test: formatting, lints, Rust (unit, store conformance, plugin runtime, real
## clients), the socket.io-client suites, JS/Python guests, the TypeScript SDK, and
## every fuzz target for a few seconds.
test: setup-test lint test-rust test-js test-python-clients test-polyglot test-sdk fuzz-smoke

## `make test`, then the 2-minute chaos soak (three nodes, one Redis, a node killed,
## Redis paused and restarted, a node cut off from Redis: benchmark/README.md, "Soak").
test-long: test soak-short

soak-short: host guests
	$(CARGO_OUT)/debug/rtm-bench soak --duration 2m --host-bin $(HOST_BIN) --chat-plugin $(GUESTS)/chat-v1.wasm

## What the two commands need (rustup target/components, apt packages as root), or one
## line naming what is missing: scripts/setup.sh.
setup-run:
	scripts/setup.sh run

setup-test:
	scripts/setup.sh test

# Built the way `cargo test --workspace` builds it (same feature unification), so the
# binary the JS suites spawn does not cost a second build of wasmtime.
host:
	$(CARGO) test --workspace --no-run

## JavaScript and Python plugins (componentize-js / componentize-py, pinned), into plugins/dist.
guests-polyglot:
	plugins/build-polyglot.sh

# Every crate: the host workspace, the guest SDK (its own workspace, host target, tests
# included) and the plugins (wasm32-wasip2, the target they ship for).
lint: setup-test
	$(CARGO) fmt --all -- --check
	$(CARGO) fmt --manifest-path guest-sdk/Cargo.toml --all -- --check
	$(CARGO) fmt --manifest-path plugins/Cargo.toml --all -- --check
	$(CARGO) fmt --manifest-path fuzz/Cargo.toml --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy --manifest-path guest-sdk/Cargo.toml --all-targets -- -D warnings
	$(CARGO) clippy --manifest-path plugins/Cargo.toml --all-targets --target wasm32-wasip2 --target-dir target/wasm-guests -- -D warnings

test-rust: guests
	scripts/test-guards/cargo_strict.sh rust-workspace $(CARGO) test --workspace
	cd guest-sdk && ../scripts/test-guards/cargo_strict.sh guest-sdk $(CARGO) test

deps-js:
	cd host/tests/js && npm ci --no-audit --no-fund
	cd rtm-sdk && npm ci --no-audit --no-fund

test-js: host guests deps-js
	cd host/tests/js && RTM_HOST_BIN=$(HOST_BIN) RTM_GUESTS_DIR=$(GUESTS) npm test

# Node's runner and vitest count a skipped test as a pass; these reporters fail the run on
# any skip or todo (or no tests at all) and end with `suite <name>: passed N, failed N,
# skipped N`. The same guard runs unittest (scripts/test-guards/).
STRICT_NODE_TEST := --test-reporter=$(CURDIR)/scripts/test-guards/strict-reporter.mjs --test-reporter-destination=stdout

# python-socketio (pinned, host/tests/python/requirements.txt) in a venv under target/.
PY_CLIENTS := $(CURDIR)/target/py-clients
test-python-clients: host
	test -x $(PY_CLIENTS)/bin/python || python3 -m venv $(PY_CLIENTS)
	$(PY_CLIENTS)/bin/pip install -q --disable-pip-version-check -r host/tests/python/requirements.txt
	RTM_HOST_BIN=$(HOST_BIN) $(PY_CLIENTS)/bin/python scripts/test-guards/pyunit_strict.py -s host/tests/python --name host/tests/python

test-polyglot: host guests guests-polyglot
	TEST_SUITE_NAME=guest-sdk/js RTM_CHAT_WASM=$(GUESTS)/chat-v1.wasm node --test $(STRICT_NODE_TEST) guest-sdk/js/test/components.test.mjs
	python3 scripts/test-guards/pyunit_strict.py -s guest-sdk/python/tests --name guest-sdk/python
	cd plugins && npm ci --no-audit --no-fund && TEST_SUITE_NAME=plugins/polyglot RTM_HOST_BIN=$(HOST_BIN) RTM_CHAT_WASM=$(GUESTS)/chat-v1.wasm node --test --test-concurrency=1 $(STRICT_NODE_TEST) polyglot.test.mjs

test-sdk: host guests deps-js
	mkdir -p $(CURDIR)/target/sdk-plugins
	cp $(GUESTS)/chat-v1.wasm $(CURDIR)/target/sdk-plugins/chat.wasm
	cd rtm-sdk && npm run build && export RTM_HOST_BIN=$(HOST_BIN) RTM_PLUGINS_DIR=$(CURDIR)/target/sdk-plugins && npm test && npm run test:e2e

## Every cargo-fuzz target (fuzz/) for FUZZ_SECONDS each (default 60): the committed
## seeds in fuzz/corpus/<target> plus what the run finds, kept under fuzz/target/corpus.
## A crash or a hang stops the run with the input in fuzz/artifacts/<target>.
FUZZ_TARGETS := presence_request manifest tenants_file jwt api_body frames
FUZZ_SECONDS ?= 60
# Sanitizer none (the fuzzed code is safe Rust) and the dev profile (fuzz/Cargo.toml:
# rtm-host and the targets at opt-level 1, dependencies at 0): one instrumented build
# (~7 min on a fresh 2-core machine, then only rtm-host rebuilds). RUSTC_BOOTSTRAP:
# cargo-fuzz's -Z flags on the stable toolchain.
FUZZ := cd fuzz && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz
FUZZ_FLAGS := --sanitizer none --dev
fuzz:
	scripts/setup.sh fuzz
	$(FUZZ) build $(FUZZ_FLAGS)
	for t in $(FUZZ_TARGETS); do \
	  mkdir -p fuzz/target/corpus/$$t && \
	  ( $(FUZZ) run $(FUZZ_FLAGS) $$t target/corpus/$$t corpus/$$t -- \
	      -max_total_time=$(FUZZ_SECONDS) -timeout=20 -rss_limit_mb=4096 -print_final_stats=1 ) \
	  || exit 1; \
	done

## The same for a few seconds per target (part of `make test`): a parser regression
## fails it, with the crash input under fuzz/artifacts/. The instrumented build costs
## ~7 min on a fresh 2-core machine (dependencies unoptimised: fuzz/Cargo.toml).
fuzz-smoke: FUZZ_SECONDS = 4
fuzz-smoke: fuzz

