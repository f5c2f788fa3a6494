# The two commands of the README: `make run` and `make test`.
# Everything else here is a step those two take.

CARGO ?= cargo
export CARGO_TERM_PROGRESS_WHEN = auto

.PHONY: run test host guests guests-polyglot lint test-rust test-js test-sdk test-polyglot deps-js

GUESTS := $(CURDIR)/target/wasm-guests/artifacts
RUN_PLUGINS := $(CURDIR)/target/run-plugins

## Build and run the host on :3000 with the chat plugin (embedded memory store; set
## REDIS_URL for Redis; PLUGINS_DIR to serve your own folder instead).
run: guests
	mkdir -p $(RUN_PLUGINS)
	cp $(GUESTS)/chat-v1.wasm $(RUN_PLUGINS)/chat.wasm
	PLUGINS_DIR=$${PLUGINS_DIR:-$(RUN_PLUGINS)} $(CARGO) run --release -p rtm-host

## Every Rust plugin and test guest, built from source for wasm32-wasip2.
guests:
	rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
	scripts/build-guests.sh

## Every test: formatting, lints, Rust (unit, store conformance, plugin runtime, real
## clients), the socket.io-client suites, JS/Python guests, and the TypeScript SDK.
test: lint test-rust test-js test-polyglot test-sdk

# Built the way `cargo test --workspace` builds it (same feature unification), so the
# binary the JS suites spawn does not cost a second build of wasmtime.
host:
	$(CARGO) test --workspace --no-run

## JavaScript and Python plugins (componentize-js / componentize-py, pinned), into plugins/dist.
guests-polyglot:
	plugins/build-polyglot.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy --manifest-path plugins/Cargo.toml --target wasm32-wasip2 --target-dir target/wasm-guests -- -D warnings

test-rust: guests
	$(CARGO) test --workspace
	cd guest-sdk && $(CARGO) test --quiet

deps-js:
	cd host/tests/js && npm ci --no-audit --no-fund
	cd rtm-sdk && npm ci --no-audit --no-fund

test-js: host guests deps-js
	cd host/tests/js && RTM_HOST_BIN=$(CURDIR)/target/debug/rtm-host RTM_GUESTS_DIR=$(GUESTS) npm test

test-polyglot: host guests guests-polyglot
	node --test guest-sdk/js/test/
	python3 -m unittest discover -s guest-sdk/python/tests
	cd plugins && npm ci --no-audit --no-fund && RTM_HOST_BIN=$(CURDIR)/target/debug/rtm-host RTM_CHAT_WASM=$(GUESTS)/chat-v1.wasm node --test --test-concurrency=1 polyglot.test.mjs

test-sdk: host guests deps-js
	mkdir -p $(CURDIR)/target/sdk-plugins
	cp $(GUESTS)/chat-v1.wasm $(CURDIR)/target/sdk-plugins/chat.wasm
	cd rtm-sdk && npm run build && export RTM_HOST_BIN=$(CURDIR)/target/debug/rtm-host RTM_PLUGINS_DIR=$(CURDIR)/target/sdk-plugins && npm test && npm run test:e2e
