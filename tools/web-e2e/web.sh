#!/bin/sh
# fractal-web (built by setup.sh) on :5173, with the environment of its CI workflow (OAuth left out).
cd "${FWEB:-/tmp/fweb}"
set -a
. ./.env.development
set +a
export PUBLIC_FRACTAL_DATA_URL=http://localhost:3000/data PUBLIC_FRACTAL_VIZARR_VIEWER_URL=http://localhost:3000/data/vizarr
export PUBLIC_FRACTAL_VOLE_VIEWER_URL=http://localhost/vole-viewer PUBLIC_FRACTAL_FEATURE_EXPLORER_URL=http://localhost:8501
export FRACTAL_DEFAULT_GROUP_NAME=All PUBLIC_GUEST_USERNAME=guest@fractal.xy PUBLIC_GUEST_PASSWORD=guest
LOG_LEVEL_CONSOLE=debug ORIGIN=http://localhost:5173 PORT=5173 FRACTAL_RUNNER_BACKEND=local exec node build
