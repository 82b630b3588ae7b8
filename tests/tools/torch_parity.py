#!/usr/bin/python3
"""PyTorch as the oracle for dakd's engine (tests/nn/test_parity.c).

usage: torch_parity.py unet CKPT IO      a dakd U-Net checkpoint + io tensors
       torch_parity.py block IO          one conv-BN-ReLU block, everything in IO

IO (written by dakd) holds the input "x", the targets and dakd's results: for "unet" the
labels "labels" (as floats), "logits", "loss" and "grad.<param>" for every parameter, and
"after.<buffer>" running statistics; for "block" the weights "conv.weight", "norm.weight",
"norm.bias", the upstream gradient "dout", and dakd's "out", "din", "grad.<param>".
PyTorch recomputes everything in float64 from the same numbers and prints one line per
tensor, "name rel_err", with rel_err = ||dakd - torch|| / ||torch||, then "worst <max>".
"""
import sys

import numpy as np
import torch
import torch.nn.functional as F

from torch_unet import UNet, Block, config_from_meta, read_safetensors


def rel(a, b):
    b = np.asarray(b, dtype=np.float64)
    d = np.linalg.norm(np.asarray(a, dtype=np.float64).ravel() - b.ravel())
    return d / max(np.linalg.norm(b.ravel()), 1e-30)


def report(pairs):
    worst = 0.0
    for name, a, b in pairs:
        e = rel(a, b)
        worst = max(worst, e)
        print("%-40s %.3e" % (name, e))
    print("worst %.6e" % worst)


def run_unet(ckpt, io):
    w, meta = read_safetensors(ckpt)
    t, _ = read_safetensors(io)
    cfg = config_from_meta(meta)
    net = UNet(**cfg).double()
    state = {k: torch.from_numpy(v).double() for k, v in w.items()}
    missing, unexpected = net.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        sys.exit("state dict mismatch: missing %s unexpected %s" % (missing, unexpected))
    net.train()
    x = torch.from_numpy(t["x"]).double()
    labels = torch.from_numpy(t["labels"]).long()
    logits, _ = net(x)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    pairs = [("logits", t["logits"], logits.detach().numpy()),
             ("loss", t["loss"], loss.detach().numpy().reshape(1))]
    for name, p in net.named_parameters():
        pairs.append(("grad." + name, t["grad." + name], p.grad.numpy()))
    for name, b in net.named_buffers():
        if "after." + name in t:
            pairs.append(("after." + name, t["after." + name], b.numpy()))
    report(pairs)


def run_block(io):
    t, _ = read_safetensors(io)
    x = torch.from_numpy(t["x"]).double().requires_grad_(True)
    dims = x.dim() - 2
    w = t["conv.weight"]
    blk = Block(dims, w.shape[1], w.shape[0], "batch", 0.0).double()
    blk.load_state_dict({"conv.weight": torch.from_numpy(w).double(),
                         "norm.weight": torch.from_numpy(t["norm.weight"]).double(),
                         "norm.bias": torch.from_numpy(t["norm.bias"]).double()}, strict=False)
    blk.train()
    out = blk(x)
    out.backward(torch.from_numpy(t["dout"]).double())
    report([("out", t["out"], out.detach().numpy()),
            ("din", t["din"], x.grad.numpy()),
            ("grad.conv.weight", t["grad.conv.weight"], blk.conv.weight.grad.numpy()),
            ("grad.norm.weight", t["grad.norm.weight"], blk.norm.weight.grad.numpy()),
            ("grad.norm.bias", t["grad.norm.bias"], blk.norm.bias.grad.numpy())])


def main(argv):
    torch.set_num_threads(1)
    if len(argv) == 4 and argv[1] == "unet":
        run_unet(argv[2], argv[3])
    elif len(argv) == 3 and argv[1] == "block":
        run_block(argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
