#!/usr/bin/env bash
# Builds the fuzz targets and runs each for a bounded time; fails on any crash, panic, timeout or
# memory limit. libFuzzer comes from the libfuzzer-sys crate and the build is plain cargo with
# cargo-fuzz's flags, so nothing needs installing (a cold `cargo install cargo-fuzz` costs about as
# much as this whole build); `cargo fuzz run TARGET` works too and reuses the same build.
#
# usage: fuzz/fuzz.sh build | test | run [TARGET...] | repro TARGET FILE
#   build   the instrumented targets (release, AddressSanitizer, overflow checks)
#   test    the harness's own tests (the seeds still verify at the fixed clock), same build flags
#   run     each TARGET (default: all) for FUZZ_SECONDS, corpus in fuzz/corpus/TARGET (grows,
#           git-ignored) started from the committed seeds in fuzz/seeds/TARGET; a crash is saved
#           to fuzz/artifacts/TARGET/ and the script exits non-zero after the other targets ran
#   repro   run one saved input again, with a backtrace
#
# Knobs (environment): FUZZ_SECONDS per target (60), FUZZ_TIMEOUT seconds one input may take (5),
# FUZZ_RSS_MB resident memory (1024), FUZZ_MALLOC_MB one allocation (128), FUZZ_MAX_LEN input
# bytes (16384), FUZZ_ARGS extra libFuzzer flags (e.g. "-jobs=2 -workers=2").
#
# stable Rust: RUSTC_BOOTSTRAP=1 lets stable rustc take -Zsanitizer=address. AddressSanitizer is
# what lets libFuzzer enforce -malloc_limit_mb (it hooks the allocator); without it only RSS is
# watched.
set -euo pipefail

FUZZ_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TARGETS=(token json claims jwks config extract fetch_state host_values dpop)
TRIPLE=$(rustc -vV | sed -n 's/^host: //p')
BIN_DIR=$FUZZ_DIR/target/$TRIPLE/release

: "${FUZZ_SECONDS:=60}" "${FUZZ_TIMEOUT:=5}" "${FUZZ_RSS_MB:=1024}" "${FUZZ_MALLOC_MB:=128}"
: "${FUZZ_MAX_LEN:=16384}" "${FUZZ_ARGS:=}"

# Exactly the flags of cargo-fuzz 0.13 (`cargo fuzz build`, with the debug assertions this
# Cargo.toml's release profile asks for): sancov-module with inline 8-bit counters, pc table,
# compare tracing and stack depth; branch folding off; ASan; one codegen unit. So `cargo fuzz`
# reuses this build and this script reuses its. --target keeps them off build scripts and macros.
RUSTFLAGS_FUZZ="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing \
-Cllvm-args=-simplifycfg-branch-fold-threshold=0 -Zsanitizer=address \
-Cllvm-args=-sanitizer-coverage-stack-depth -Cdebug-assertions -Ccodegen-units=1"

cargo_fuzz() {
	RUSTC_BOOTSTRAP=1 RUSTFLAGS="$RUSTFLAGS_FUZZ" \
		cargo "$1" --manifest-path "$FUZZ_DIR/Cargo.toml" --release --target "$TRIPLE" "${@:2}"
}

build() {
	local start=$SECONDS
	cargo_fuzz build --bins
	echo "fuzz: built ${#TARGETS[@]} targets in $((SECONDS - start)) s"
}

# One target for FUZZ_SECONDS; prints a summary line, returns libFuzzer's status.
run_one() {
	local target=$1 corpus=$FUZZ_DIR/corpus/$1 artifacts=$FUZZ_DIR/artifacts/$1 log
	mkdir -p "$corpus" "$artifacts"
	log=$(mktemp)
	local status=0
	ASAN_OPTIONS=${ASAN_OPTIONS:-detect_odr_violation=0} "$BIN_DIR/$target" \
		-max_total_time="$FUZZ_SECONDS" -timeout="$FUZZ_TIMEOUT" -rss_limit_mb="$FUZZ_RSS_MB" \
		-malloc_limit_mb="$FUZZ_MALLOC_MB" -max_len="$FUZZ_MAX_LEN" -report_slow_units=1 \
		-print_final_stats=1 -artifact_prefix="$artifacts/" $FUZZ_ARGS \
		"$corpus" "$FUZZ_DIR/seeds/$target" >"$log" 2>&1 || status=$?
	summary "$target" "$log" "$status"
	if [ "$status" -ne 0 ]; then
		grep -E -A12 'panicked at|ERROR: libFuzzer|ERROR: AddressSanitizer|==ERROR' "$log" | head -40 >&2
		grep -E 'Test unit written to' "$log" >&2 || true
		echo "fuzz: $target failed (exit $status); full log kept in $log" >&2
	else
		rm -f "$log"
	fi
	return "$status"
}

# target, runs, execs/s, coverage, corpus size, peak RSS and slow inputs, from libFuzzer's output.
summary() {
	local cov corpus slow
	final() { sed -n "s/^stat::$1: *//p" "$2" | tail -1; }
	cov=$(grep -oE 'cov: [0-9]+' "$2" | tail -1 | cut -d' ' -f2)
	corpus=$(grep -oE 'corp: [0-9]+/[0-9]+[KMb]*' "$2" | tail -1 | cut -d' ' -f2)
	slow=$(grep -c 'Slowest unit' "$2" || true)
	printf 'fuzz: %-12s %s  runs %-9s %6s exec/s  cov %-5s corpus %-10s peak %s MB  slow(>1s) %s\n' \
		"$1" "$([ "$3" -eq 0 ] && echo ok || echo FAIL)" "$(final number_of_executed_units "$2")" \
		"$(final average_exec_per_sec "$2")" "${cov:-?}" "${corpus:-?}" "$(final peak_rss_mb "$2")" "$slow"
}

run() {
	local failed=()
	build
	for target in "${@:-${TARGETS[@]}}"; do
		run_one "$target" || failed+=("$target")
	done
	if [ ${#failed[@]} -gt 0 ]; then
		echo "fuzz: FAILED: ${failed[*]} (inputs in fuzz/artifacts/; replay: fuzz/fuzz.sh repro TARGET FILE)" >&2
		return 1
	fi
}

# All in a function, called from the last line: bash reads a script as it runs, so editing this file
# during a long run would otherwise change the rest of that run.
main() {
	case "${1:-run}" in
	build) build ;;
	test) cargo_fuzz test --lib ;;
	run) run "${@:2}" ;;
	repro)
		[ $# -eq 3 ] || { echo "usage: $0 repro TARGET FILE" >&2; exit 2; }
		RUST_BACKTRACE=1 "$BIN_DIR/$2" -timeout="$FUZZ_TIMEOUT" -rss_limit_mb="$FUZZ_RSS_MB" \
			-malloc_limit_mb="$FUZZ_MALLOC_MB" "$3"
		;;
	*) sed -n '2,20p' "$0" >&2; exit 2 ;;
	esac
}

main "$@"; exit
