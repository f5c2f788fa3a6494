#!/usr/bin/env bash
# Builds the JavaScript and Python plugin components into plugins/dist/:
#
#   chat-js.wasm        plugins/chat-js            (componentize-js)
#   spin-js.wasm        plugins/test-guests-js/spin
#   moderation-py.wasm  plugins/moderation-py      (componentize-py)
#   membomb-py.wasm     plugins/test-guests-py/membomb
#
# Toolchains are installed on first use, from the package registries only:
#   - npm ci in guest-sdk/js (committed package-lock.json: componentize-js,
#     jco, esbuild at exact versions)
#   - a venv at plugins/.venv with componentize-py at the version pinned in
#     guest-sdk/python/requirements-build.txt
#
# Up-to-date outputs are skipped: an output is rebuilt when any input
# (plugin sources, SDK, wit/, lockfiles, this script) is newer than it, or
# when its build settings changed (RTM_CHAT_MARK, toolchain versions).
# Every output is written to a dot-file and renamed into place, so
# plugins/dist/ can be a live PLUGINS_DIR.
#
# Usage: plugins/build-polyglot.sh [--force] [--out DIR] [NAME...]
#   NAME: any of chat-js spin-js moderation-py membomb-py (default: these
#   four), or sdk-probe-js sdk-probe-py (SDK test guests, into dist/sdk-probe/)
#   RTM_CHAT_MARK=v2 plugins/build-polyglot.sh chat-js   # marked build
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
out="$here/dist"
force=0
names=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --force) force=1 ;;
    --out) out="$2"; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) names+=("$1") ;;
  esac
  shift
done
[[ ${#names[@]} -gt 0 ]] || names=(chat-js spin-js moderation-py membomb-py)
mkdir -p "$out"
out="$(cd "$out" && pwd)"

jsdir="$root/guest-sdk/js"
pydir="$root/guest-sdk/python"
venv="$here/.venv"
mark="${RTM_CHAT_MARK:-v1}"

log() { printf '[build-polyglot] %s\n' "$*" >&2; }
now_ms() { date +%s%3N; }

# ---- toolchains ------------------------------------------------------------

need_js=0; need_py=0
for n in "${names[@]}"; do
  case "$n" in
    *-js) need_js=1 ;;
    *-py) need_py=1 ;;
    *) echo "unknown component $n (chat-js spin-js moderation-py membomb-py sdk-probe-js sdk-probe-py)" >&2; exit 2 ;;
  esac
done

ensure_js() {
  command -v node >/dev/null || { echo "node is required (>= 20)" >&2; exit 1; }
  local stamp="$jsdir/node_modules/.package-lock.json"
  if [[ ! -f "$stamp" || "$jsdir/package-lock.json" -nt "$stamp" ]]; then
    log "installing the JS toolchain (npm ci in guest-sdk/js)"
    local t; t=$(now_ms)
    (cd "$jsdir" && npm ci --no-audit --no-fund --loglevel=error)
    log "JS toolchain installed in $(( $(now_ms) - t )) ms"
  fi
}

py_pin() { sed -n 's/^componentize-py==\([0-9.]*\).*/\1/p' "$pydir/requirements-build.txt"; }

ensure_py() {
  local want; want="$(py_pin)"
  local have=""
  [[ -x "$venv/bin/componentize-py" ]] && have="$("$venv/bin/componentize-py" --version 2>/dev/null | awk '{print $2}')"
  if [[ "$have" != "$want" ]]; then
    log "installing componentize-py $want into plugins/.venv"
    local t; t=$(now_ms)
    command -v python3 >/dev/null || { echo "python3 is required" >&2; exit 1; }
    [[ -x "$venv/bin/pip" ]] || python3 -m venv "$venv"
    # Keep the venv out of git without touching any .gitignore of the repo.
    echo '*' > "$venv/.gitignore"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$pydir/requirements-build.txt"
    log "componentize-py installed in $(( $(now_ms) - t )) ms"
  fi
}

[[ $need_js -eq 1 ]] && ensure_js
[[ $need_py -eq 1 ]] && ensure_py

js_settings() {
  local v1 v2
  v1=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$jsdir/node_modules/@bytecodealliance/componentize-js/package.json")
  v2=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$jsdir/node_modules/esbuild/package.json")
  echo "componentize-js ${v1:-?} esbuild ${v2:-?}"
}

# ---- up-to-date check ------------------------------------------------------

# up_to_date OUT SETTINGS INPUT...: OUT exists, was built with SETTINGS, and
# no file under the INPUTs is newer than it.
up_to_date() {
  local o="$1" settings="$2"; shift 2
  local stamp; stamp="$(dirname "$o")/.$(basename "$o").settings"
  [[ $force -eq 0 && -f "$o" && -f "$stamp" ]] || return 1
  [[ "$(cat "$stamp")" == "$settings" ]] || return 1
  local newer
  newer="$(find "$@" -type f -newer "$o" \
      -not -path '*/__pycache__/*' -not -path '*/node_modules/*' -not -name '*.wasm' \
      -print -quit 2>/dev/null)"
  [[ -z "$newer" ]]
}

write_settings() { printf '%s' "$2" > "$(dirname "$1")/.$(basename "$1").settings"; }

built=0; skipped=0
report() {
  local o="$1" t0="$2"
  local size; size=$(stat -c %s "$o")
  log "built $(basename "$o") ($(( size / 1024 )) KiB) in $(( $(now_ms) - t0 )) ms"
  built=$((built + 1))
}

build_js() { # NAME ENTRY SRC_DIR [--define X=Y]...
  local name="$1" entry="$2" src="$3"; shift 3
  local o="$out/$name.wasm"
  local settings; settings="$(js_settings) $*"
  if up_to_date "$o" "$settings" "$src" "$jsdir/src" "$jsdir/build.mjs" "$jsdir/package-lock.json" \
      "$root/wit" "$here/build-polyglot.sh"; then
    log "$name.wasm is up to date"; skipped=$((skipped + 1)); return
  fi
  log "building $name.wasm (componentize-js) ..."
  local t; t=$(now_ms)
  node "$jsdir/build.mjs" "$entry" -o "$o" -q "$@"
  write_settings "$o" "$settings"
  report "$o" "$t"
}

build_py() { # NAME APP_DIR
  local name="$1" app="$2"
  local o="$out/$name.wasm"
  local settings; settings="componentize-py $(py_pin)"
  if up_to_date "$o" "$settings" "$app" "$pydir/rtm_guest" "$pydir/build.sh" "$pydir/requirements-build.txt" \
      "$root/wit" "$here/build-polyglot.sh"; then
    log "$name.wasm is up to date"; skipped=$((skipped + 1)); return
  fi
  log "building $name.wasm (componentize-py) ..."
  local t; t=$(now_ms)
  RTM_PY_VENV="$venv" bash "$pydir/build.sh" "$app" -o "$o"
  write_settings "$o" "$settings"
  report "$o" "$t"
}

started=$(now_ms)
for n in "${names[@]}"; do
  case "$n" in
    chat-js) build_js chat-js "$here/chat-js/plugin.js" "$here/chat-js" --define "RTM_CHAT_MARK=$mark" ;;
    spin-js) build_js spin-js "$here/test-guests-js/spin/plugin.js" "$here/test-guests-js/spin" ;;
    moderation-py) build_py moderation-py "$here/moderation-py" ;;
    membomb-py) build_py membomb-py "$here/test-guests-py/membomb" ;;
    # SDK test guests, on demand only, in a subfolder a PLUGINS_DIR watcher ignores.
    sdk-probe-js) out="$out/sdk-probe" build_js sdk-probe-js "$here/test-guests-js/sdk-probe/plugin.js" "$here/test-guests-js/sdk-probe" ;;
    sdk-probe-py) out="$out/sdk-probe" build_py sdk-probe-py "$here/test-guests-py/sdk-probe" ;;
  esac
done
log "done: $built built, $skipped up to date, into ${out#"$root"/} ($(( $(now_ms) - started )) ms)"
