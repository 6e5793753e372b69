#!/bin/sh
# By hand, not in CI: fractal-web's OAuth login against fractalctl, through the test OpenID provider
# (tests/oidc, `npm ci` there first) and with e-mails to an aiosmtpd spool. Needs setup.sh's $FWEB (default
# /tmp/fweb) and a built fractalctl ($FRACTALCTL, default build/fractalctl). Starts, on their own ports so as not
# to meet server.sh and web.sh: the provider (:5556), fractalctl on a fresh SQLite database (:8010, admin
# admin@fractal.xy), the SMTP server (:8025) and fractal-web (:5183); then oauth-login.mjs drives Chromium: the
# admin logs in through the provider and reaches /v2/projects, an unknown user gets upstream's registration text
# and the admins one mail. Everything it started is stopped at the end.
set -e
ROOT=$(realpath "$(dirname "$0")/../..")
BIN=$(realpath "${FRACTALCTL:-$ROOT/build/fractalctl}")
FWEB=${FWEB:-/tmp/fweb}
D=$(mktemp -d /tmp/fweb-oauth-run.XXXXXX)
pids=
trap 'for p in $pids; do kill $p 2>/dev/null || true; done' EXIT
wait_for() { # what, command...: up to 60 s
	what=$1; shift
	n=0
	until "$@" >/dev/null 2>&1; do
		n=$((n + 1))
		[ $n -lt 300 ] || { echo "oauth.sh: $what did not come up (logs in $D)" >&2; exit 1; }
		sleep 0.2
	done
}
node "$ROOT/tests/oidc/provider.js" 5556 fractal-web-client fractal-web-secret \
	http://localhost:5183/auth/login/oauth2/ >"$D/oidc.log" 2>&1 &
pids="$pids $!"
/usr/bin/python3 "$ROOT/tests/smtp_server.py" 8025 "$D/spool" admin@fractal.xy smtp-pw >"$D/smtp.log" 2>&1 &
pids="$pids $!"
wait_for 'the OpenID provider' curl -sf -o /dev/null http://127.0.0.1:5556/.well-known/openid-configuration
cat >"$D/.fractal_server.env" <<ENV
DB_ENGINE=sqlite
SQLITE_PATH=$D/fractal.sqlite
JWT_SECRET_KEY=web-oauth-secret
FRACTAL_DEFAULT_GROUP_NAME=All
OAUTH_CLIENT_NAME=testidp
OAUTH_CLIENT_ID=fractal-web-client
OAUTH_CLIENT_SECRET=fractal-web-secret
OAUTH_OIDC_CONFIG_ENDPOINT=http://127.0.0.1:5556/.well-known/openid-configuration
OAUTH_REDIRECT_URL=http://localhost:5183/auth/login/oauth2/
FRACTAL_EMAIL_SENDER=admin@fractal.xy
FRACTAL_EMAIL_PASSWORD=smtp-pw
FRACTAL_EMAIL_SMTP_SERVER=127.0.0.1
FRACTAL_EMAIL_SMTP_PORT=8025
FRACTAL_EMAIL_INSTANCE_NAME=web-oauth
FRACTAL_EMAIL_RECIPIENTS=admin@fractal.xy
FRACTAL_EMAIL_USE_STARTTLS=false
ENV
(cd "$D" && "$BIN" set-db >/dev/null && "$BIN" init-db-data --resource default --profile default \
	--admin-email admin@fractal.xy --admin-pwd 1234 --admin-project-dir /tmp >/dev/null)
(cd "$D" && exec "$BIN" start --port 8010) >"$D/server.log" 2>&1 &
pids="$pids $!"
(cd "$FWEB" && set -a && . ./.env.development && set +a &&
	FRACTAL_SERVER_HOST=http://localhost:8010 PUBLIC_OAUTH_CLIENT_NAME=testidp ORIGIN=http://localhost:5183 \
	PORT=5183 AUTH_COOKIE_SECURE=false exec node build) >"$D/web.log" 2>&1 &
pids="$pids $!"
wait_for fractalctl curl -sf -o /dev/null http://localhost:8010/api/alive/
wait_for fractal-web curl -s -o /dev/null http://localhost:5183/
FWEB="$FWEB" SPOOL="$D/spool" node "$ROOT/tools/web-e2e/oauth-login.mjs"
echo "oauth.sh: passed (logs in $D)"
