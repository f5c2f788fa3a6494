#!/usr/bin/env bash
# Runs a `cargo test` command line and fails it when any test was ignored (an ignored test
# is a skip, and a skip in `make test` is a failure), then prints the suite's totals in
# the same shape as the JS and Python guards: `suite <name>: passed N, failed N, skipped N`.
#   scripts/test-guards/cargo_strict.sh <suite-name> cargo test ...
set -uo pipefail
name="$1"; shift
log=$(mktemp)
trap 'rm -f "$log"' EXIT
"$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
read -r passed failed ignored < <(awk '
  /^test result:/ {
    for (i = 1; i <= NF; i++) {
      if ($(i+1) ~ /^passed;?$/) p += $i
      if ($(i+1) ~ /^failed;?$/) f += $i
      if ($(i+1) ~ /^ignored;?$/) g += $i
    }
  }
  END { print p + 0, f + 0, g + 0 }' "$log")
echo "suite $name: passed $passed, failed $failed, skipped $ignored"
if ((status != 0)); then exit "$status"; fi
if ((ignored > 0)); then
  echo "suite $name: $ignored ignored test(s): a skipped test fails make test" >&2
  exit 1
fi
if ((passed == 0)); then
  echo "suite $name: no tests ran" >&2
  exit 1
fi
