#!/usr/bin/env bash
# test.sh — builds fractalctl and runs every test on SQLite and PostgreSQL.
#
# Installs what it needs (Debian packages, the PostgreSQL server), builds the
# binary under AddressSanitizer and UndefinedBehaviorSanitizer (build-asan/),
# the plain one (build/) and one without PostgreSQL support (build-nopg/),
# starts a throwaway PostgreSQL cluster on 127.0.0.1 under a temporary folder,
# runs the C unit tests (tests/unit/, `meson test`) and then the black-box
# suite against the sanitized build, then removes the cluster. Either failing
# fails the script. The OAuth tests' OpenID provider (oidc-provider from the
# npm registry, pinned by tests/oidc/package-lock.json) is installed with npm
# ci. Extra arguments go to pytest (e.g. -k login, or test files:
# scripts/test.sh tests/test_jobs.py -x runs only those).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh postgresql python3-pytest python3-pip-whl python3-setuptools-whl python3-aiosmtpd openssl nodejs npm

# the OpenID provider of tests/test_oauth.py, as pinned by its lock file
if [ ! -f tests/oidc/node_modules/.package-lock.json ] ||
   [ tests/oidc/package-lock.json -nt tests/oidc/node_modules/.package-lock.json ]; then
	echo "== installing the test OpenID provider (npm ci in tests/oidc)"
	(cd tests/oidc && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

setup() { # dir, meson options...
	local dir=$1; shift
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" "$@" >/dev/null
	fi
	local log
	log=$(ninja -C "$dir" 2>&1) || { echo "$log" >&2; echo "test.sh: build in $dir failed" >&2; exit 1; }
}
echo "== building"
setup build
setup build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug
setup build-nopg -Dpostgres=disabled

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
echo "== C unit tests"
meson test -C build-asan --quiet --print-errorlogs --suite unit

echo "== starting a throwaway PostgreSQL cluster"
pgdir=$(mktemp -d /tmp/fractal-test-pg.XXXXXX)
chmod 755 "$pgdir"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
trap 'tests/pg_cluster.sh stop "$pgdir"' EXIT
tests/pg_cluster.sh start "$pgdir" "$port"

echo "== running the tests"
export FRACTALCTL=$PWD/build-asan/fractalctl FRACTALCTL_NOPG=$PWD/build-nopg/fractalctl
export PGTEST_SOCKET=$pgdir/sock PGTEST_PORT=$port
# test files or folders given as arguments replace the default "tests"
paths=(tests)
for a in "$@"; do
	case $a in tests/*) paths=() ;; esac
done
/usr/bin/python3 -m pytest -p no:cacheprovider -q "${paths[@]}" "$@"
