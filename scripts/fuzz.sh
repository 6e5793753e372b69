#!/usr/bin/env bash
# fuzz.sh [seconds-per-target] [target...] — builds the libFuzzer targets of
# fuzz/ (clang, ASan + UBSan, build-fuzz/) and runs each for the given time
# (default 60 s), one after the other, starting from the committed seed
# corpus fuzz/corpus/<target>/ plus what earlier runs found
# (build-fuzz/corpus/<target>/, kept between runs, never committed). A
# crash, leak, undefined behaviour, failed check or timeout stops the script
# with a non-zero exit; the input is saved under build-fuzz/artifacts/<target>/
# and can be replayed with build-fuzz/fuzz_<target> <file>. scripts/test.sh
# runs it with a few seconds per target and FUZZ_SEED=1, so that a CI run
# mutates the same inputs in the same order every time (a gate that finds a
# new input at random would fail a change that did not cause it); without
# FUZZ_SEED each run starts from a random seed, as the longer runs of
# docs/security.md do.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(validate jsonspan form filters pyrepr)

if [ ! -f build-fuzz/build.ninja ]; then
	CC=clang meson setup build-fuzz -Dfuzz=true -Dbuildtype=debug >/dev/null
fi
log=$(ninja -C build-fuzz 2>&1) || { echo "$log" >&2; echo "fuzz.sh: build in build-fuzz failed" >&2; exit 1; }

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
for t in "${targets[@]}"; do
	work=build-fuzz/corpus/$t art=build-fuzz/artifacts/$t
	mkdir -p "$work" "$art"
	echo "== fuzz_$t: ${secs}s"
	# the first corpus dir receives what is new; the seeds are only read
	if ! build-fuzz/fuzz_"$t" -max_total_time="$secs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
		${FUZZ_SEED:+-seed="$FUZZ_SEED"} -print_final_stats=1 -artifact_prefix="$art/" "$work" "fuzz/corpus/$t" \
		>build-fuzz/fuzz_"$t".log 2>&1; then
		grep -E -A30 'ERROR: |runtime error|Assertion|SUMMARY' build-fuzz/fuzz_"$t".log | head -60 >&2
		echo "fuzz.sh: fuzz_$t failed; the input is in $art/, the log in build-fuzz/fuzz_$t.log" >&2
		exit 1
	fi
	grep -E '^stat::number_of_executed_units|^stat::new_units_added' build-fuzz/fuzz_"$t".log | tr '\n' ' '
	echo
done
