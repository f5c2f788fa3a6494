#!/bin/sh
# Installs the Node reference peer's dependencies exactly as locked.
set -eu
cd "$(dirname "$0")"
exec npm ci --no-audit --no-fund
