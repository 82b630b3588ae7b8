#!/usr/bin/python3
"""Read a dakd safetensors checkpoint with nothing but json and numpy (the user story: no
dakd, no safetensors package). Prints the metadata as JSON, then one line per tensor:
name, shape as d0,d1,..., and the values as %.9e. With --torch the arrays go through
torch.from_numpy first, to show the values load into PyTorch unchanged."""
import json
import sys

import numpy as np


def load(path):
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    return meta, {name: np.frombuffer(data[e["data_offsets"][0]:e["data_offsets"][1]],
                                      dtype="<f4").reshape(e["shape"])
                  for name, e in header.items()}


if __name__ == "__main__":
    meta, tensors = load(sys.argv[1])
    if "--torch" in sys.argv:
        import torch
        tensors = {k: torch.from_numpy(v.copy()) for k, v in tensors.items()}
    print(json.dumps(meta, sort_keys=True))
    for name, a in tensors.items():
        print(name, ",".join(str(d) for d in a.shape),
              " ".join("%.9e" % x for x in a.reshape(-1).tolist()))
