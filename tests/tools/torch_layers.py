#!/usr/bin/python3
"""PyTorch's numbers for the layer kernels, for the oracle test in tests/nn/test_layers.c.

usage: torch_layers.py IN.bin OUT.bin
  IN.bin   float32 x of shape (2, 3, 4, 6, 5), then uint8 labels (2, 4, 6, 5)
  OUT.bin  float32, concatenated in this order (flat, C order):
    trilinear x2 of x; bilinear x2 of x[:, :, 0]; BatchNorm3d(3) training output of x with
    weight 1 + 0.1 c and bias 0.05 c, then its running_mean and running_var (from 0 / 1,
    momentum 0.1); MaxPool3d(2) values and indices of x; MaxPool2d(2) values and indices of
    x[:, :, 0]; log_softmax(x / 1.5, dim=1); cross-entropy (ignore_index 255) as one value.
Exit status 2 with a message on stderr when torch is missing.
"""
import sys

import numpy as np

try:
    import torch
    import torch.nn.functional as F
except ImportError as e:
    sys.stderr.write(f"torch not available: {e}\n")
    sys.exit(2)

raw = open(sys.argv[1], "rb").read()
n = 2 * 3 * 4 * 6 * 5
x = np.frombuffer(raw[: 4 * n], dtype=np.float32).reshape(2, 3, 4, 6, 5)
lab = np.frombuffer(raw[4 * n:], dtype=np.uint8).reshape(2, 4, 6, 5)
x = torch.from_numpy(x.copy())
lab = torch.from_numpy(lab.astype(np.int64))
x2 = x[:, :, 0].contiguous()
bn = torch.nn.BatchNorm3d(3)
with torch.no_grad():
    bn.weight.copy_(1 + 0.1 * torch.arange(3.0))
    bn.bias.copy_(0.05 * torch.arange(3.0))
bn.train()
with torch.no_grad():
    y = bn(x)
    p3, i3 = F.max_pool3d(x, 2, return_indices=True)
    p2, i2 = F.max_pool2d(x2, 2, return_indices=True)
    parts = [
        F.interpolate(x, scale_factor=2, mode="trilinear", align_corners=False),
        F.interpolate(x2, scale_factor=2, mode="bilinear", align_corners=False),
        y, bn.running_mean, bn.running_var, p3, i3.float(), p2, i2.float(),
        F.log_softmax(x / 1.5, dim=1),
        F.cross_entropy(x, lab, ignore_index=255).reshape(1),
    ]
out = np.concatenate([t.detach().numpy().astype(np.float32).ravel() for t in parts])
out.tofile(sys.argv[2])
