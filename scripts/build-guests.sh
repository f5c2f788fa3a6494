#!/usr/bin/env bash
# Builds every Rust plugin and test guest from source for wasm32-wasip2 and collects the
# components in target/wasm-guests/artifacts/ (the names the test suites use):
#   chat-v1.wasm chat-v2.wasm (marks messages "v2") kv-a.wasm kv-b.wasm trap.wasm panic.wasm
#   spin.wasm membomb.wasm fs.wasm net.wasm bad-manifest.wasm noop.wasm host-probe.wasm
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/target/wasm-guests/artifacts"
mkdir -p "$out"

build() { # target-dir, env..., -- packages...
  local dir="$1"; shift
  local envs=() pkgs=()
  while (($#)) && [[ "$1" != "--" ]]; do envs+=("$1"); shift; done
  [[ "${1:-}" == "--" ]] && shift
  for p in "$@"; do pkgs+=(-p "$p"); done
  echo "guests: building ${*:-all} ${envs[*]:-}" >&2
  env -u RUSTFLAGS -u RTM_CHAT_MARK -u RTM_PLUGIN_NAME "${envs[@]}" CARGO_TARGET_DIR="$dir" \
    cargo build --release --target wasm32-wasip2 --manifest-path "$root/plugins/Cargo.toml" "${pkgs[@]}"
}

build "$root/target/wasm-guests"
build "$root/target/wasm-guests-v2" RTM_CHAT_MARK=v2 RTM_PLUGIN_NAME=kv-b -- chat kv-probe

main="$root/target/wasm-guests/wasm32-wasip2/release"
v2="$root/target/wasm-guests-v2/wasm32-wasip2/release"
cp "$main/chat.wasm" "$out/chat-v1.wasm"
cp "$v2/chat.wasm" "$out/chat-v2.wasm"
cp "$main/kv_probe.wasm" "$out/kv-a.wasm"
cp "$v2/kv_probe.wasm" "$out/kv-b.wasm"
for g in trap panic spin membomb fs net noop; do cp "$main/$g.wasm" "$out/$g.wasm"; done
cp "$main/bad_manifest.wasm" "$out/bad-manifest.wasm"
cp "$main/host_probe.wasm" "$out/host-probe.wasm"
echo "guests: components in $out" >&2
