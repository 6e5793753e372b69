#!/usr/bin/env bash
# test.sh — builds fractalctl and runs every test on SQLite and PostgreSQL.
#
# Installs what it needs (Debian packages, the PostgreSQL server), builds the
# binary under AddressSanitizer and UndefinedBehaviorSanitizer (build-asan/),
# the plain one (build/) and one without PostgreSQL support (build-nopg/),
# starts a throwaway PostgreSQL cluster on 127.0.0.1 under a temporary folder
# and a single-node SLURM cluster under another (tests/slurm_cluster.sh, which
# installs SLURM, munge, MariaDB and sudo, and needs root) with an OpenSSH
# server in front of it for the slurm_ssh tests (tests/sshd.sh), runs the C unit
# tests (tests/unit/, `meson test`) and then the black-box suite against the
# sanitized build, then stops both clusters. Either failing, or the SLURM
# cluster not starting, fails the script. The OAuth tests' OpenID provider
# (oidc-provider from the npm registry, pinned by tests/oidc/package-lock.json)
# is installed with npm ci. Extra arguments go to pytest (e.g. -k login, or
# test files: scripts/test.sh tests/test_jobs.py -x runs only those).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh postgresql python3-pytest python3-pip-whl python3-setuptools-whl python3-aiosmtpd openssl nodejs npm openssh-server openssh-client

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
slurmdir=
sshdir=
stop_clusters() {
	[ -z "$sshdir" ] || tests/sshd.sh stop "$sshdir" || echo "test.sh: stopping sshd failed" >&2
	[ -z "$slurmdir" ] || tests/slurm_cluster.sh stop "$slurmdir" || echo "test.sh: stopping the SLURM cluster failed" >&2
	tests/pg_cluster.sh stop "$pgdir"
}
trap stop_clusters EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
tests/pg_cluster.sh start "$pgdir" "$port"

echo "== starting a throwaway SLURM cluster"
slurmdir=$(mktemp -d /tmp/fractal-test-slurm.XXXXXX)
# on failure it has printed its daemons' logs
tests/slurm_cluster.sh start "$slurmdir" || { echo "test.sh: the SLURM cluster did not start" >&2; exit 1; }
set -a # SLURM_CONF, SLURMTEST_DIR, SLURMTEST_USER, SLURMTEST_PARTITION
. "$slurmdir/env"
set +a

echo "== starting a throwaway OpenSSH server"
sshdir=$(mktemp -d /tmp/fractal-test-sshd.XXXXXX)
tests/sshd.sh start "$sshdir" "$SLURM_CONF" || { echo "test.sh: sshd did not start" >&2; exit 1; }
set -a # SSHTEST_HOST, SSHTEST_KEY, SSHTEST_KNOWN_HOSTS, SSHTEST_USER, SSHTEST_PORT, SSHTEST_DIR
. "$sshdir/env"
set +a

echo "== running the tests"
export FRACTALCTL=$PWD/build-asan/fractalctl FRACTALCTL_NOPG=$PWD/build-nopg/fractalctl
export PGTEST_SOCKET=$pgdir/sock PGTEST_PORT=$port
# test files or folders given as arguments replace the default "tests"
paths=(tests)
for a in "$@"; do
	case $a in tests/*) paths=() ;; esac
done
/usr/bin/python3 -m pytest -p no:cacheprovider -q "${paths[@]}" "$@"
