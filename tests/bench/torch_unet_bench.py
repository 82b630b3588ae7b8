#!/usr/bin/python3
"""PyTorch side of the U-Net benchmark: the identical network (tests/tools/torch_unet.py),
one training step = forward + cross-entropy + backward + SGD momentum 0.9, or inference.
Prints one line in bench_unet's format. Run with OPENBLAS_NUM_THREADS=1 and the same
OPENBLAS_CORETYPE as dakd (its transposed convolutions call the system OpenBLAS).

usage: torch_unet_bench.py --dims D --base B --batch N --size S --steps K --mode train|infer
       [--threads T]"""
import argparse
import os
import resource
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from torch_unet import UNet  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dims", type=int, default=2)
    ap.add_argument("--base", type=int, default=16)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--mode", default="train")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    net = UNet(dims=a.dims, base=a.base, levels=4)
    shape = (a.batch, 1) + (a.size,) * a.dims
    x = torch.randn(shape)
    y = (x[:, 0] > 0.5).long()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    infer = a.mode == "infer"
    net.train(not infer)
    times = []
    for it in range(a.steps + 2):
        t0 = time.perf_counter()
        if infer:
            with torch.no_grad():
                net(x)
        else:
            opt.zero_grad(set_to_none=False)
            logits, _ = net(x)
            F.cross_entropy(logits, y).backward()
            opt.step()
        times.append(time.perf_counter() - t0)
    t = sorted(times[2:])
    med = t[len(t) // 2]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print("torch %s dims=%d base=%d batch=%d size=%d  median_ms=%.1f  min_ms=%.1f  rss_mb=%.0f"
          "  threads=%d" % ("infer" if infer else "train", a.dims, a.base, a.batch, a.size,
                            med * 1e3, t[0] * 1e3, rss, a.threads))


if __name__ == "__main__":
    main()
