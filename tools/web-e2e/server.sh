#!/bin/sh
# fractalctl ($FRACTALCTL, default build/fractalctl of this checkout) on SQLite in /tmp/fractal-test-server,
# set up as fractal-web's tests/start-test-server.sh sets up upstream (its .fractal_server.env and resource.json,
# admin admin@fractal.xy / 1234), listening on $PORT (default 8000).
set -e
BIN=$(realpath "${FRACTALCTL:-$(dirname "$0")/../../build/fractalctl}")
SHIMS=$(realpath "$(dirname "$0")/shims")
FWEB=${FWEB:-/tmp/fweb}
D=/tmp/fractal-test-server
if [ ! -d $D ]; then
	mkdir -p $D
	cp "$FWEB/tests/.fractal_server.env" "$FWEB/tests/resource.json" $D/
	printf '\nDB_ENGINE=sqlite\nSQLITE_PATH=%s/fractal.sqlite\n' $D >>$D/.fractal_server.env
	python3 -m venv $D/venv
	cd $D
	"$BIN" set-db
	"$BIN" init-db-data --resource resource.json --profile default --admin-email admin@fractal.xy \
		--admin-pwd 1234 --admin-project-dir /tmp
fi
cd $D
# no PyPI: pip installs offline from Debian's pip/setuptools wheels and without dependencies; the tasks'
# dependencies (pydantic, fractal-task-tools) are replaced at run time by the small shims on PYTHONPATH
export PIP_NO_INDEX=1 PIP_FIND_LINKS=/usr/share/python-wheels PIP_NO_DEPS=1
export FRACTAL_ENABLE_TASK_GROUP_RESET=true PYTHONPATH="$SHIMS"
exec "$BIN" start --port "${PORT:-8000}"
