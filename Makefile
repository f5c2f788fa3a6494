# The two commands of the README: `make run` and `make test`.
# Everything else here is a step those two take.

CARGO ?= cargo
export CARGO_TERM_PROGRESS_WHEN = auto

.PHONY: run test host lint test-rust test-js test-sdk deps-js

## Build and run the host on :3000 (embedded memory store; set REDIS_URL for Redis).
run:
	$(CARGO) run --release -p rtm-host

## Every test: formatting, lints, Rust (unit, store conformance, real clients), the
## socket.io-client suite, and the TypeScript SDK (unit, integration, browser).
test: lint test-rust test-js test-sdk

host:
	$(CARGO) build -p rtm-host

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

test-rust:
	$(CARGO) test --workspace

deps-js:
	cd host/tests/js && npm ci --no-audit --no-fund
	cd rtm-sdk && npm ci --no-audit --no-fund

test-js: host deps-js
	cd host/tests/js && RTM_HOST_BIN=$(CURDIR)/target/debug/rtm-host npm test

test-sdk: host deps-js
	cd rtm-sdk && npm run build && RTM_HOST_BIN=$(CURDIR)/target/debug/rtm-host npm test && RTM_HOST_BIN=$(CURDIR)/target/debug/rtm-host npm run test:e2e
