#!/usr/bin/env bash
# slurm.sh — builds the optimised binary, starts a throwaway single-node SLURM
# cluster (tests/slurm_cluster.sh; needs root) and runs the SLURM benchmark on
# SQLite; writes the "## SLURM (slurm_sudo)" section of bench/RESULTS.md (the
# rest of the file is bench/run.sh's). See bench/slurm.py.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
cluster=$(mktemp -d /tmp/fractal-bench-slurm-cluster.XXXXXX)
trap 'tests/slurm_cluster.sh stop "$cluster"' EXIT
tests/slurm_cluster.sh start "$cluster"
set -a
# shellcheck disable=SC1091
. "$cluster/env"
set +a
/usr/bin/python3 bench/slurm.py
