#!/usr/bin/env bash
# What the README's commands need, brought or named in the first second.
#
#   scripts/setup.sh run    # `make run`: cargo and the wasm32-wasip2 target
#   scripts/setup.sh test   # `make test`: also rustfmt, clippy, node + npm, python3,
#                           # redis-server, redis-cli (the cluster suites) and chromium (for the SDK's browser tests)
#   scripts/setup.sh fuzz   # `make fuzz`: cargo-fuzz (pinned, cargo install)
#
# Rust targets and components come from rustup. Debian packages are installed with
# apt-get when this runs as root on a machine that has it; otherwise the script stops
# with one line naming what is missing and the command that installs it. `make test`
# and `.ci/run` both start here, so CI and a newcomer's machine take the same path.
set -euo pipefail

mode="${1:-test}"
CARGO_FUZZ_VERSION=0.13.1
case "$mode" in run | test | fuzz) ;; *) echo "usage: $0 run|test|fuzz" >&2; exit 2 ;; esac

say() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: %s\n' "$*" >&2; exit 1; }

command -v cargo >/dev/null || die "cargo is missing: install Rust with https://rustup.rs (curl --proto '=https' -sSf https://sh.rustup.rs | sh)"
command -v rustup >/dev/null || die "rustup is missing (needed for the wasm32-wasip2 target): install Rust with https://rustup.rs"

# Debian packages: command -> package.
declare -A pkg_of=([make]=make [gcc]=gcc)
if [[ "$mode" == test ]]; then
  pkg_of+=([redis-server]=redis-server [redis-cli]=redis-tools [chromium]=chromium [node]=nodejs [npm]=npm [python3]=python3)
fi
missing=()
for cmd in "${!pkg_of[@]}"; do
  command -v "$cmd" >/dev/null || missing+=("${pkg_of[$cmd]}")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    say "installing ${missing[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    die "missing ${missing[*]}: install with: sudo apt-get install -y ${missing[*]}"
  fi
fi

installed_targets=$(rustup target list --installed)
if ! grep -qx wasm32-wasip2 <<<"$installed_targets"; then
  say "adding the wasm32-wasip2 target (rustup)"
  rustup target add wasm32-wasip2 >&2
fi
if [[ "$mode" == test ]]; then
  for component in rustfmt clippy; do
    if ! rustup component list --installed 2>/dev/null | grep -q "^$component"; then
      say "adding the $component component (rustup)"
      rustup component add "$component" >&2
    fi
  done
fi
if [[ "$mode" == fuzz ]]; then
  # cargo-fuzz (pinned) for `make fuzz`; built once into ~/.cargo/bin.
  if ! cargo fuzz --version 2>/dev/null | grep -q "^cargo-fuzz $CARGO_FUZZ_VERSION"; then
    say "installing cargo-fuzz $CARGO_FUZZ_VERSION (cargo install)"
    cargo install --quiet --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION" >&2
  fi
fi
if [[ "$mode" == test ]]; then
  node_major=$(node -p 'process.versions.node.split(".")[0]')
  ((node_major >= 20)) || die "node $(node --version) is too old: the suites need Node.js 20 or newer"
fi
