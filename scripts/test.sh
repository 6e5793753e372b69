#!/usr/bin/env bash
# test.sh — builds fractalctl and runs every test on SQLite and PostgreSQL.
#
# Installs what it needs (Debian packages, the PostgreSQL server), builds the
# binary under AddressSanitizer and UndefinedBehaviorSanitizer (build-asan/),
# the plain one (build/) and one without PostgreSQL support (build-nopg/),
# starts a throwaway PostgreSQL cluster on 127.0.0.1 under a temporary folder
# and a single-node SLURM cluster under another (tests/slurm_cluster.sh, which
# installs SLURM, munge, MariaDB and sudo, and needs root) with an OpenSSH
# server in front of it for the slurm_ssh tests (tests/sshd.sh), runs the C
# unit tests (tests/unit/, `meson test`), the libFuzzer targets of fuzz/ for
# FUZZ_SECONDS each (default 10; scripts/fuzz.sh, clang, build-fuzz/), the
# black-box suite against the sanitized build, and the concurrency tests again
# against a ThreadSanitizer build (build-tsan/, TSAN=1), then stops the
# clusters. Any of these failing, or the SLURM cluster not starting, fails the
# script. The OAuth tests' OpenID provider (oidc-provider from the npm
# registry, pinned by tests/oidc/package-lock.json) and the OpenAPI validator
# (@apidevtools/swagger-parser, tests/openapi/) are installed with npm ci.
# Extra arguments go to pytest (e.g. -k login, or test files:
# scripts/test.sh tests/test_jobs.py -x runs only those, without the fuzzing
# and TSan stages unless FUZZ_SECONDS or TSAN=1 are set).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh postgresql python3-pytest python3-pip-whl python3-setuptools-whl python3-aiosmtpd python3-jsonschema \
	python3-prometheus-client openssl nodejs npm clang libclang-rt-14-dev openssh-server openssh-client

# the OpenID provider of tests/test_oauth.py and the OpenAPI validator of
# tests/test_openapi.py, each as pinned by its lock file
for npm_dir in tests/oidc tests/openapi; do
	if [ ! -f $npm_dir/node_modules/.package-lock.json ] ||
	   [ $npm_dir/package-lock.json -nt $npm_dir/node_modules/.package-lock.json ]; then
		echo "== installing the npm packages of $npm_dir (npm ci)"
		(cd $npm_dir && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
	fi
done

# test files given as arguments: a targeted run, without the fuzzing and
# ThreadSanitizer stages unless FUZZ_SECONDS or TSAN ask for them
paths=(tests)
for a in "$@"; do
	case $a in tests/*) paths=() ;; esac
done
if [ ${#paths[@]} -gt 0 ]; then full=1; else full=0; fi
FUZZ_SECONDS=${FUZZ_SECONDS:-$((full * 10))}
TSAN=${TSAN:-$full}

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
if [ "$TSAN" = 1 ]; then
	setup build-tsan -Db_sanitize=thread -Db_lundef=false -Dbuildtype=debug
fi

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
echo "== C unit tests"
meson test -C build-asan --quiet --print-errorlogs --suite unit

# the libFuzzer targets of fuzz/ (clang, build-fuzz/), a short bounded run
# each: the seed corpus (with the regressions of bugs they found) and then
# FUZZ_SECONDS of new inputs per target; a crash or failed check fails here
if [ "$FUZZ_SECONDS" != 0 ]; then
	echo "== fuzzing (${FUZZ_SECONDS}s per target)"
	FUZZ_SEED=${FUZZ_SEED:-1} scripts/fuzz.sh "$FUZZ_SECONDS"
fi

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
# test files or folders given as arguments replace the default "tests";
# the 15 slowest are listed at the end (the suite's time is watched)
/usr/bin/python3 -m pytest -p no:cacheprovider -q --durations=15 "${paths[@]}" "$@"

# the concurrency tests again, against the ThreadSanitizer build: a data
# race (or lock-order inversion) reported by the server fails the test that
# stops it (conftest.py's Server.stop() refuses any sanitizer report);
# tests/tsan.supp lists the reports of libraries, with why. With them, two
# tests of an image index shared across threads (a job's, an export's, read
# while the cache's thread edits a copy). Left out:
# test_user_register, whose 48 bcrypt hashes per engine take most of a
# minute under TSan and share the lock path of the other race cases.
if [ "$TSAN" = 1 ]; then
	echo "== the concurrency tests under ThreadSanitizer (build-tsan/)"
	# TSan needs its fixed memory layout: where the kernel randomises mmap
	# more than it allows (vm.mmap_rnd_bits=32 on some kernels; 28 is fine),
	# the binary dies at start; then it runs without ASLR through setarch -R
	tsan_bin=$PWD/build-tsan/fractalctl
	if ! "$tsan_bin" --version >/dev/null 2>&1; then
		setarch "$(uname -m)" -R "$tsan_bin" --version >/dev/null ||
			{ echo "test.sh: build-tsan/fractalctl does not run, not even under setarch -R" >&2; exit 1; }
		printf '#!/bin/sh\nexec setarch "$(uname -m)" -R "%s" "$@"\n' "$tsan_bin" >build-tsan/fractalctl-norandom
		chmod +x build-tsan/fractalctl-norandom
		tsan_bin=$PWD/build-tsan/fractalctl-norandom
	fi
	FRACTALCTL=$tsan_bin \
	TSAN_OPTIONS="suppressions=$PWD/tests/tsan.supp second_deadlock_stack=1 history_size=4" \
		/usr/bin/python3 -m pytest -p no:cacheprovider -q tests/test_races.py tests/test_exhaustion.py \
		tests/test_shutdown.py tests/test_crash.py \
		tests/test_images_index.py::test_an_export_answered_while_the_list_is_edited \
		tests/test_jobs.py::test_a_task_that_changes_no_image_does_not_rewrite_the_list \
		-k 'not test_user_register'
fi
