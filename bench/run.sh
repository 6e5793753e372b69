#!/usr/bin/env bash
# run.sh — builds the optimised binary and runs the benchmark on SQLite and on
# a throwaway PostgreSQL cluster; writes bench/RESULTS.md. See bench/run.py.
# `run.sh images` runs bench/images.py instead (images at scale; its own
# section of RESULTS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh postgresql wrk
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
pgdir=$(mktemp -d /tmp/fractal-bench-pg.XXXXXX)
chmod 755 "$pgdir"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
trap 'tests/pg_cluster.sh stop "$pgdir"' EXIT
tests/pg_cluster.sh start "$pgdir" "$port"
PGTEST_SOCKET=$pgdir/sock PGTEST_PORT=$port /usr/bin/python3 "bench/${1:-run}.py"
