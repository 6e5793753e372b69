#!/usr/bin/env bash
# serve.sh — builds fractalctl and serves the API on an SQLite database in
# the current checkout, with an admin user. Safe to run again: the settings
# file, the database and the admin are kept.
#
#   scripts/serve.sh [fractalctl start options, e.g. --host 0.0.0.0 --port 8000]
#
# The admin is admin@fractal.xy with password 1234 unless ADMIN_EMAIL /
# ADMIN_PWD say otherwise (only used when the database has no admin yet).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
if [ ! -f .fractal_server.env ]; then
	cat >.fractal_server.env <<ENV
DB_ENGINE=sqlite
SQLITE_PATH=fractal.sqlite
JWT_SECRET_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
FRACTAL_DEFAULT_GROUP_NAME=All
ENV
	echo "serve.sh: wrote .fractal_server.env (SQLite database fractal.sqlite)"
fi
build/fractalctl set-db
build/fractalctl init-db-data --resource default --profile default \
	--admin-email "${ADMIN_EMAIL:-admin@fractal.xy}" --admin-pwd "${ADMIN_PWD:-1234}" \
	--admin-project-dir "$PWD/data-projects"
exec build/fractalctl start "$@"
