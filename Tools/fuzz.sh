#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer + AddressSanitizer) of the targets in Tools/fuzz/ (README "Fuzzing").
#
#   Tools/fuzz.sh [TARGET|all] [--seconds N] [--runs N] [--corpus DIR] [--build-only] [-- libFuzzer flags]
#
# TARGET: decapsulate, segmenter, coalescer, config, control, framelayout (or fuzz-<name>); default all. Each target runs
# for --seconds (default 300) or --runs inputs, on its corpus directory: --corpus DIR (per target
# DIR/<target>), default .build-fuzz/campaign/corpus/<target>, seeded from Tools/fuzz/corpus/<target> and kept
# between runs so a long campaign goes on where the last stopped. Inputs that break a property
# or crash are saved as .build-fuzz/campaign/findings/<target>/crash-*; replay one with the ordinary build:
#   swift build --product fuzz-<target> && .build/debug/fuzz-<target> .build-fuzz/campaign/findings/<target>/crash-…
# Exits non-zero when any target found something.
#
# The build (scratch path .build-fuzz, SCRATCH_PATH overrides): -sanitize=fuzzer does not link
# with SwiftPM executables (their `main` is renamed with --defsym, which clashes with libFuzzer's),
# so the targets are built with -DVXFUZZ (their entry point calls LLVMFuzzerRunDriver), coverage
# instrumentation and ASan, and linked against libFuzzer's runtime without its main.
set -euo pipefail
cd "$(dirname "$0")/.."

all_targets=(decapsulate segmenter coalescer config control framelayout)
targets=()
seconds=300
runs=""
corpus_root=".build-fuzz/campaign/corpus"
build_only=false
extra=()
while (($#)); do
    case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --corpus) corpus_root=$2; shift 2 ;;
    --build-only) build_only=true; shift ;;
    --) shift; extra=("$@"); break ;;
    all) targets=("${all_targets[@]}"); shift ;;
    -h | --help) sed -n '2,19p' "$0"; exit 0 ;;
    *)
        name=${1#fuzz-}
        [[ " ${all_targets[*]} " == *" $name "* ]] || { echo "unknown target $1 (${all_targets[*]})" >&2; exit 2; }
        targets+=("$name"); shift ;;
    esac
done
((${#targets[@]})) || targets=("${all_targets[@]}")

say() { printf '== %s\n' "$*"; }

scratch=${SCRATCH_PATH:-.build-fuzz}
# libFuzzer's runtime from the toolchain's own clang resource directory (its version varies).
toolchain=$(dirname "$(dirname "$(command -v swift)")")
runtime=$(ls "$toolchain"/lib/clang/*/lib/linux/libclang_rt.fuzzer_no_main-x86_64.a 2>/dev/null | head -1)
[[ -n $runtime ]] || { echo "no libclang_rt.fuzzer_no_main in $toolchain/lib/clang" >&2; exit 1; }
flags=(
    --scratch-path "$scratch" -c release
    -Xswiftc -sanitize=address -Xswiftc -sanitize-coverage=edge,inline-8bit-counters,trace-cmp
    -Xswiftc -DVXFUZZ -Xlinker "$runtime" -Xlinker -lstdc++
)
for target in "${targets[@]}"; do
    say "building fuzz-$target (libFuzzer, ASan)"
    swift build "${flags[@]}" --product "fuzz-$target"
done
bin=$(swift build "${flags[@]}" --show-bin-path)
$build_only && exit 0

mkdir -p .build-fuzz/campaign
summary=()
failed=0
for target in "${targets[@]}"; do
    corpus=$corpus_root/$target
    findings=.build-fuzz/campaign/findings/$target
    mkdir -p "$corpus" "$findings"
    log=.build-fuzz/campaign/$target.log
    limit=(-max_total_time="$seconds")
    [[ -n $runs ]] && limit=(-runs="$runs")
    say "fuzz-$target: ${limit[*]} on $corpus (log $log)"
    status=0
    # ASan: leaks are the process's own long-lived buffers; a finding is an abort or an ASan report.
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1} \
        "$bin/fuzz-$target" "${limit[@]}" -artifact_prefix="$findings/" -print_final_stats=1 \
        -timeout=10 -rss_limit_mb=4096 "${extra[@]}" "$corpus" "Tools/fuzz/corpus/$target" >"$log" 2>&1 || status=$?
    executions=$(awk '/stat::number_of_executed_units/ {print $2}' "$log" | tail -1)
    coverage=$(grep -oE '(cov: [0-9]+ )?ft: [0-9]+' "$log" | tail -1)
    if ((status != 0)); then
        failed=1
        found=$(ls -t "$findings" | head -1)
        summary+=("fuzz-$target: FINDING after ${executions:-?} executions: $findings/$found (see $log)")
        grep -m1 -E 'fuzz property failed|ERROR: AddressSanitizer|Fatal error|deadly signal' "$log" | sed 's/^/    /' || true
    else
        summary+=("fuzz-$target: ${executions:-?} executions, ${coverage:-cov ?}, corpus $(ls "$corpus" | wc -l) inputs, no finding")
    fi
done
say "summary"
printf '%s\n' "${summary[@]}"
exit $failed
