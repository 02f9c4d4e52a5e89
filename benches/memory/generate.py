"""Writes N Yelp-format reviews (Zhang's polarity CSV) and a small model that knows their words,
deterministically, for the memory benchmark (run.sh): python3 generate.py N OUT_DIR."""

import json
import random
import struct
import sys

N, OUT = int(sys.argv[1]), sys.argv[2]
rng = random.Random(15)
WORDS = [f"w{k}" for k in range(200)] + ["good", "bad", "not", "great", "awful", "food"]

with open(f"{OUT}/reviews.csv", "w") as f:
    for _ in range(N):
        words = [rng.choice(WORDS) for _ in range(rng.randint(8, 24))]
        f.write(f'"{rng.choice("12")}","{" ".join(words).capitalize()}."\n')

vocab = ["<unk>", "."] + WORDS
with open(f"{OUT}/vocab.json", "w") as f:
    json.dump(vocab, f)

V, E, H, C = len(vocab), 8, 8, 2
shapes = {
    "embed.weight": [V, E],
    "lstm.weight_ih_l0": [4 * H, E],
    "lstm.weight_hh_l0": [4 * H, H],
    "lstm.bias_ih_l0": [4 * H],
    "lstm.bias_hh_l0": [4 * H],
    "hidden_to_label.weight": [C, H],
    "hidden_to_label.bias": [C],
}
header, data = {}, b""
for name, shape in shapes.items():
    count = 1
    for d in shape:
        count *= d
    values = b"".join(struct.pack("<f", rng.uniform(-0.5, 0.5)) for _ in range(count))
    header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + len(values)]}
    data += values
encoded = json.dumps(header, separators=(",", ":")).encode()
encoded += b" " * (-len(encoded) % 8)
with open(f"{OUT}/model.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(encoded)) + encoded + data)
