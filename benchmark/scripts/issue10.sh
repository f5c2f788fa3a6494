#!/usr/bin/env bash
# The issue-10 comparison table of benchmark/README.md: each row is one invocation with
# alternating rounds, this build against an older rtm-host (OLD=<binary>, optional) and
# against the Node reference peer (node-peer; its npm packages install on first use).
# Output: one table per run in ${OUT:-target/bench-results/issue10}.
# Needs: cargo build --release -p rtm-host -p rtm-bench; make guests (chat).
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-target/bench-results/issue10}"
mkdir -p "$out"
bench=target/release/rtm-bench
new="${NEW:-target/release/rtm-host}"
chat_dir="$out/old-plugins"
mkdir -p "$chat_dir"
cp target/wasm-guests/artifacts/chat-v1.wasm "$chat_dir/chat.wasm"

run() { # name, args...
  local name="$1"; shift
  echo "== $name: rtm-bench $*" >&2
  "$bench" "$@" -q | tee "$out/$name.txt"
}

pair() { # name, peer label, peer spec, chat peer spec, args...
  local name="$1" label="$2" peer="$3" chat_peer="$4"; shift 4
  case "$1" in
    chat) run "$name-$label" "$@" --spawn redis --host-bin "$new" --compare-spawn "$chat_peer" ;;
    *) run "$name-$label" "$@" --spawn redis --host-bin "$new" --compare-spawn "$peer" ;;
  esac
}

rows() { # peer label, peer spec, chat peer spec
  pair hb4k "$@" presence --heartbeats-per-sec 4000 --rounds 2
  pair hb20k "$@" presence --heartbeats-per-sec 20000 --rounds 2
  pair chat "$@" chat --messages-per-sec 1000 --rounds 2
  pair conn "$@" connections --connections 10000 --rounds 1
  pair storm "$@" storm --connections 19500 --rounds 1
}

if [ -n "${OLD:-}" ]; then
  rows old "node:$OLD" "node:env PLUGINS_DIR=$chat_dir $OLD"
fi
rows node node-peer node-peer
