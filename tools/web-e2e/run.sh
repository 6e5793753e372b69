#!/bin/sh
# Runs fractal-web's Playwright tests (chromium, one worker) against fractalctl on :8000 and fractal-web
# on :5173 (server.sh, web.sh, started beforehand). Extra arguments go to `playwright test` (spec paths, -g ...).
# Starts fractal-web's fake job server (:8080) and an empty docs server (:8001) when they are not running.
# The mock tasks are collected here from upstream's wheel, so that fractal-web's init step finds them and does
# not download the wheel from GitHub.
set -e
FWEB=${FWEB:-/tmp/fweb}
ASSETS=${ASSETS:-/tmp/fweb-assets}
cd "$FWEB"
curl -s -o /dev/null localhost:8080/ || (node tests/fake-job-server.js >/tmp/fweb-fake-job-server.log 2>&1 &)
curl -s -o /dev/null localhost:8001/ ||
	(mkdir -p /tmp/fweb-docs && cd /tmp/fweb-docs && python3 -m http.server 8001 --bind 127.0.0.1 >/dev/null 2>&1 &)
TOK=$(curl -sf -X POST localhost:8000/auth/token/login/ -d 'username=admin@fractal.xy&password=1234' |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
if ! curl -sf localhost:8000/api/v2/task-group/ -H "Authorization: Bearer $TOK" | grep -q '"fractal-tasks-mock"'; then
	curl -sf -X POST 'localhost:8000/api/v2/task/collect/pip/?private=false' -H "Authorization: Bearer $TOK" \
		-F "file=@$ASSETS/fractal_tasks_mock-0.0.1-py3-none-any.whl" >/dev/null
	until curl -sf localhost:8000/api/v2/task-group/activity/ -H "Authorization: Bearer $TOK" | grep -q '"status":"OK"'; do
		sleep 1
	done
fi
export SKIP_PIXI_TEST=true SKIP_OAUTH_TEST=true
exec npx playwright test -c fractalctl.config.js --project=chromium "$@"
