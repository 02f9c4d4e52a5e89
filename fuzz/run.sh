#!/usr/bin/env bash
# Fuzzes every parser with AFL++ for SECONDS each (default 600), one after the other, then
# replaces corpus/<target> by the minimised queue and copies any crash or hang to
# findings/<target>/ (tests/fuzz_corpus.rs replays both on every `cargo test`).
#
#   cargo install cargo-afl --locked   # once: builds AFL++ for this toolchain
#   fuzz/run.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-600}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(sst_trees zhang_csv token_jsonl pipeline_yaml safetensors vocabulary_json)
fi
cargo afl build --release
afl_bin=$(dirname "$(find "${XDG_DATA_HOME:-$HOME/.local/share}/afl.rs" -name afl-fuzz -type f | head -1)")
export AFL_SKIP_CPUFREQ=1 AFL_NO_UI=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
for target in "${targets[@]}"; do
    out=out/$target
    rm -rf "$out"
    # -t 1000: an input taking over a second is a hang; -m 512: one over 512 MB a crash.
    cargo afl fuzz -V "$seconds" -t 1000 -m 512 -i "corpus/$target" -o "$out" \
        "target/release/$target" > "out/$target.log" 2>&1 || true
    grep -E "execs_done|execs_per_sec|corpus_count|saved_crashes|saved_hangs|run_time" \
        "$out/default/fuzzer_stats" | tee "out/$target.stats"
    for kind in crashes hangs; do
        for found in "$out"/default/"$kind"/id:*; do
            [ -e "$found" ] || continue
            mkdir -p "findings/$target"
            cp "$found" "findings/$target/$kind-$(sha256sum "$found" | cut -c1-16)"
        done
    done
    # The queue (every input that found new coverage, the old corpus among them), minimised to
    # the fewest inputs that keep its coverage, becomes the corpus, each named by its content.
    # afl-cmin.bash: the Python afl-cmin of cargo-afl 0.18.2 finds no coverage in these targets.
    rm -rf "out/$target.min"
    PATH="$afl_bin:$PATH" AFL_PATH="$afl_bin" "$afl_bin/afl-cmin.bash" -i "$out/default/queue" \
        -o "out/$target.min" -- "target/release/$target" > "out/$target.cmin.log" 2>&1
    rm -rf "corpus/$target"
    mkdir -p "corpus/$target"
    for kept in "out/$target.min"/*; do
        cp "$kept" "corpus/$target/$(sha256sum "$kept" | cut -c1-16)"
    done
done
