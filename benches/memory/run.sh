#!/usr/bin/env bash
# Peak resident memory of scoring every unigram of 100,000 and of 1,000,000 generated
# Yelp-format reviews (the input streams: memory must not grow with the number of reviews).
#   benches/memory/run.sh [BINARY]   (default target/release/cd-pipeline)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
binary=${1:-$here/../../target/release/cd-pipeline}
work=${WORK:-$(mktemp -d)}
for n in 100000 1000000; do
    mkdir -p "$work/$n"
    python3 "$here/generate.py" "$n" "$work/$n"
    /usr/bin/time -v "$binary" run "$here/yelp_unigrams.yaml" --set "data_dir=$work/$n" \
        --set "models.small.weights=$work/$n/model.safetensors" \
        --set "models.small.vocab=$work/$n/vocab.json" \
        --output "$work/$n/out" 2> "$work/$n/time.log" > /dev/null
    rss=$(grep "Maximum resident set size" "$work/$n/time.log" | awk '{print $6}')
    wall=$(grep "Elapsed (wall clock)" "$work/$n/time.log" | awk '{print $8}')
    echo "$n reviews: peak RSS $((rss / 1024)) MiB, wall $wall"
done
