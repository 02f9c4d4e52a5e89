"""Loads models trained by cd-pipeline into PyTorch and compares the logits on SST dev.

    python tests/pytorch/check_load.py CD_PIPELINE SST_DEV_TREES MODEL_PREFIX...

MODEL_PREFIX is a trained model's path without `_model.safetensors` (for example
`out/sst_architectures/bilstm`, next to `bilstm_vocab.json`). For each model the script reads the
architecture from the tensor names (spec `cd_architectures.md` §1), builds `nn.LSTM` / `nn.GRU`
with those options, loads the state_dict with `strict=True`, and runs every SST dev sentence.
cd-pipeline's logits of the same sentences come from `cd-pipeline score --spans sentence`: CD's
rel + irrel of the whole sentence plus the output bias. Prints the largest absolute difference
per model and exits 1 if any exceeds 1e-5.

Needs torch, safetensors and pyarrow in the Python that runs it.
"""

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
import torch
from safetensors.torch import load_file

TOLERANCE = 1e-5


def normalize(token):
    """cd-pipeline's `normalize_token`."""
    lower = token.lower()
    return {"-lrb-": "(", "-rrb-": ")"}.get(lower, lower.replace("\\/", "/").replace("\\*", "*"))


def sst_sentences(path):
    leaf = re.compile(r"\(\d+ ([^()\s]+)\)")
    return [leaf.findall(line) for line in Path(path).read_text().splitlines() if line.strip()]


class Classifier(torch.nn.Module):
    def __init__(self, state):
        super().__init__()
        cell = "gru" if any(k.startswith("gru.") for k in state) else "lstm"
        layers = 1 + max(int(re.search(r"_l(\d+)", k).group(1)) for k in state if k.startswith(cell + "."))
        self.bidirectional = any(k.endswith("_reverse") for k in state)
        vocab, embedding = state["embed.weight"].shape
        hidden = state[f"{cell}.weight_hh_l0"].shape[1]
        classes = state["hidden_to_label.weight"].shape[0]
        self.cell = cell
        self.embed = torch.nn.Embedding(vocab, embedding)
        module = torch.nn.GRU if cell == "gru" else torch.nn.LSTM
        setattr(self, cell, module(embedding, hidden, num_layers=layers, bidirectional=self.bidirectional))
        self.hidden_to_label = torch.nn.Linear(hidden * (2 if self.bidirectional else 1), classes)
        self.load_state_dict(state, strict=True)
        self.description = f"{layers}-layer{' bidirectional' if self.bidirectional else ''} {cell.upper()}"

    def forward(self, ids):
        output = getattr(self, self.cell)(self.embed(ids).unsqueeze(1))[1]
        h_n = output[0] if self.cell == "lstm" else output
        features = torch.cat([h_n[-2], h_n[-1]], dim=1) if self.bidirectional else h_n[-1]
        return self.hidden_to_label(features)[0]


def our_logits(binary, prefix, sentences, bias):
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "dev.jsonl"
        source.write_text("".join(json.dumps({"id": str(k), "tokens": s}) + "\n" for k, s in enumerate(sentences)))
        out = Path(tmp) / "scores.parquet"
        subprocess.run(
            [binary, "score", "--model", f"{prefix}_model.safetensors", "--vocab", f"{prefix}_vocab.json",
             "--input", str(source), "--output", str(out), "--method", "cd", "--spans", "sentence",
             "--target", "logit:0"],
            check=True, stderr=subprocess.DEVNULL)
        table = pq.read_table(out).to_pylist()
    logits = {}
    for row in table:
        logits[int(row["sentence_id"])] = [r + i + b for r, i, b in zip(row["rel"], row["irrel"], bias)]
    return [logits[k] for k in range(len(sentences))]


def main():
    binary, trees, *prefixes = sys.argv[1:]
    sentences = sst_sentences(trees)
    failed = False
    torch.set_grad_enabled(False)
    for prefix in prefixes:
        state = load_file(f"{prefix}_model.safetensors")
        model = Classifier(state).eval()
        tokens = json.loads(Path(f"{prefix}_vocab.json").read_text())
        index = {t: k for k, t in enumerate(tokens)}
        unknown = index["<unk>"]
        worst = 0.0
        ours = our_logits(binary, prefix, sentences, state["hidden_to_label.bias"].tolist())
        for sentence, mine in zip(sentences, ours):
            ids = torch.tensor([index.get(normalize(t), unknown) for t in sentence])
            theirs = model(ids).tolist()
            worst = max(worst, max(abs(a - b) for a, b in zip(mine, theirs)))
        status = "ok" if worst <= TOLERANCE else "FAILED"
        failed |= worst > TOLERANCE
        print(f"{prefix}: {model.description}, load_state_dict(strict=True) ok, {len(sentences)} SST dev sentences, "
              f"max |logit difference| {worst:.2e} ({status}, tolerance {TOLERANCE:g}; torch {torch.__version__})")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
