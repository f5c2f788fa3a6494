#!/usr/bin/env bash
# Re-measures the README's results table: every run is bounded (10 s windows, at most
# 19,500 connections), loopback only, each against a fresh server the harness starts.
# Output: one table per run in ${OUT:-target/bench-results} (add --json to a line for JSON).
# Needs: cargo build --release -p rtm-host -p rtm-bench; make guests (chat/reload).
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-target/bench-results}"
mkdir -p "$out"
bench=target/release/rtm-bench

run() { # name, args...
  local name="$1"; shift
  echo "== $name: rtm-bench $*" >&2
  "$bench" "$@" -q | tee "$out/$name.txt"
}

run presence-memory presence --spawn memory --heartbeats-per-sec 20000
run presence-redis presence --spawn redis --heartbeats-per-sec 20000
run sweep-presence-memory presence --spawn memory --sweep --sweep-start 5000 --sweep-factor 1.5 --duration 5s
run sweep-presence-redis presence --spawn redis --sweep --sweep-start 5000 --sweep-factor 1.5 --duration 5s
run connections-memory connections --spawn memory --connections 10000
run connections-memory-nojoin connections --spawn memory --connections 10000 --skip-join
run connections-redis connections --spawn redis --connections 10000
run storm-memory storm --spawn memory --connections 19500
run storm-redis storm --spawn redis --connections 19500
run chat-memory chat --spawn memory --messages-per-sec 2000
run chat-redis chat --spawn redis --messages-per-sec 2000
# 100 members per room: every message is 100 deliveries, so 1,000 msg/s = 100,000 deliveries/s.
run chat-memory-fanout100 chat --spawn memory --room-count 10 --users-per-room 100 --messages-per-sec 1000
run chat-redis-fanout100 chat --spawn redis --room-count 10 --users-per-room 100 --messages-per-sec 1000
run sweep-chat-memory chat --spawn memory --room-count 10 --users-per-room 100 --sweep --sweep-start 200 --sweep-factor 1.5 --p99-ms 20 --duration 5s
run reload-memory reload --spawn memory --messages-per-sec 1000 --reloads 3
