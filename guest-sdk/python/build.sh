#!/usr/bin/env bash
# Builds one Python rtm plugin into a WebAssembly component.
#
#   guest-sdk/python/build.sh <app-dir> -o <out.wasm>
#
# <app-dir> holds app.py, the module componentize-py loads; it must define
# the exported class `Handler` (with rtm_guest: `Handler = plugin.handler()`).
# rtm_guest (this directory) is on the module path, next to <app-dir>.
# The component targets world `plugin` of wit/ at the repository root; it is
# written to a dot-file next to <out.wasm> and renamed into place, so the
# output may go straight into a live PLUGINS_DIR.
#
# componentize-py comes from the venv in $RTM_PY_VENV (default plugins/.venv),
# created with the pinned version of requirements-build.txt when missing.
set -euo pipefail

sdk="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$sdk/../.." && pwd)"
venv="${RTM_PY_VENV:-$root/plugins/.venv}"

app=""; out=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    -o|--out) out="$2"; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) app="$1" ;;
  esac
  shift
done
if [[ -z "$app" || -z "$out" ]]; then
  echo "usage: guest-sdk/python/build.sh <app-dir> -o <out.wasm>" >&2
  exit 2
fi
[[ -f "$app/app.py" ]] || { echo "$app/app.py not found" >&2; exit 2; }

want="$(sed -n 's/^componentize-py==\([0-9.]*\).*/\1/p' "$sdk/requirements-build.txt")"
have=""
[[ -x "$venv/bin/componentize-py" ]] && have="$("$venv/bin/componentize-py" --version 2>/dev/null | awk '{print $2}')"
if [[ "$have" != "$want" ]]; then
  echo "[build.sh] installing componentize-py $want into $venv" >&2
  [[ -x "$venv/bin/pip" ]] || python3 -m venv "$venv"
  echo '*' > "$venv/.gitignore"   # keep the venv out of git
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$sdk/requirements-build.txt"
fi

mkdir -p "$(dirname "$out")"
tmp="$(dirname "$out")/.$(basename "$out").$$.tmp"
trap 'rm -f "$tmp"' EXIT
"$venv/bin/componentize-py" -d "$root/wit" -w plugin componentize app \
  -p "$(cd "$app" && pwd)" -p "$sdk" -o "$tmp" >/dev/null
mv -f "$tmp" "$out"
echo "[build.sh] wrote $out ($(stat -c %s "$out") bytes)" >&2
