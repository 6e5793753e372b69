#!/usr/bin/env bash
# accesslog.sh — builds the optimised binary and measures what the access log
# costs a small request; writes the "## Access log" section of
# bench/RESULTS.md. See bench/accesslog.py.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh wrk
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
/usr/bin/python3 bench/accesslog.py
