#!/usr/bin/python3
"""The dakd U-Net rebuilt in PyTorch with dakd's parameter names, so a dakd safetensors
checkpoint loads 1:1 (see lib/nn/unet_build.c), plus a reader of safetensors files that
needs nothing but json and numpy.

Used by tests/nn/test_parity.c (forward and gradient parity) and tests/bench (speed)."""
import json
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_safetensors(path):
    """{name: float32 ndarray}, metadata dict — json + numpy only."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    out = {}
    for name, t in header.items():
        b, e = t["data_offsets"]
        out[name] = np.frombuffer(data[b:e], dtype="<f4").reshape(t["shape"]).copy()
    return out, meta


def write_safetensors(path, tensors, meta=None):
    header, blobs, off = {}, [], 0
    for name, a in tensors.items():
        a = np.ascontiguousarray(a, dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(a.shape),
                        "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    if meta:
        header["__metadata__"] = {str(k): str(v) for k, v in meta.items()}
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def axes(dims, k):
    """A (d, h, w) triple as the torch layer of `dims` takes it: (h, w) in 2-D."""
    return tuple(k[1:]) if dims == 2 else tuple(k)


class Block(nn.Module):
    def __init__(self, dims, cin, cout, norm, slope, kernel=(3, 3, 3)):
        super().__init__()
        Conv = nn.Conv3d if dims == 3 else nn.Conv2d
        k = axes(dims, kernel)
        self.conv = Conv(cin, cout, k, padding=tuple(x // 2 for x in k), bias=(norm == "none"))
        if norm == "batch":
            self.norm = (nn.BatchNorm3d if dims == 3 else nn.BatchNorm2d)(cout)
        elif norm == "instance":
            self.norm = (nn.InstanceNorm3d if dims == 3 else nn.InstanceNorm2d)(cout, affine=True)
        else:
            self.norm = nn.Identity()
        self.slope = slope

    def forward(self, x):
        x = self.norm(self.conv(x))
        return F.leaky_relu(x, self.slope) if self.slope > 0 else F.relu(x)


class Level(nn.Module):
    def __init__(self, dims, cin, cout, norm, slope, kernel=(3, 3, 3)):
        super().__init__()
        self.block1 = Block(dims, cin, cout, norm, slope, kernel)
        self.block2 = Block(dims, cout, cout, norm, slope, kernel)

    def forward(self, x):
        return self.block2(self.block1(x))


class Up(nn.Module):
    """Interpolation + 1x1 conv; registered as up<l>.conv.*"""

    def __init__(self, dims, cin, cout, scale=(2, 2, 2)):
        super().__init__()
        self.conv = (nn.Conv3d if dims == 3 else nn.Conv2d)(cin, cout, 1)
        self.mode = "trilinear" if dims == 3 else "bilinear"
        self.scale = tuple(float(x) for x in axes(dims, scale))

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=self.scale, mode=self.mode,
                                       align_corners=False))


class UNet(nn.Module):
    """pool: levels - 1 triples (d, h, w) of strides after each level, kernel: levels triples
    of conv kernels (dakd.config.pool / .kernel); None = 2 and 3 everywhere."""

    def __init__(self, dims=2, in_channels=1, classes=2, base=16, levels=4, norm="batch",
                 up="transposed", deep_supervision=False, leaky_slope=0.0, pool=None,
                 kernel=None):
        super().__init__()
        self.levels = levels
        pool = pool or [(2, 2, 2)] * (levels - 1)
        kernel = kernel or [(3, 3, 3)] * levels
        self.pool_k = [axes(dims, p) for p in pool]
        self.maxpool = F.max_pool3d if dims == 3 else F.max_pool2d
        w = [base * 2 ** l for l in range(levels)]
        Conv = nn.Conv3d if dims == 3 else nn.Conv2d
        ConvT = nn.ConvTranspose3d if dims == 3 else nn.ConvTranspose2d
        for l in range(levels - 1):
            setattr(self, "enc%d" % l, Level(dims, in_channels if l == 0 else w[l - 1], w[l],
                                             norm, leaky_slope, kernel[l]))
        self.bottleneck = Level(dims, w[levels - 2], w[levels - 1], norm, leaky_slope,
                                kernel[levels - 1])
        for l in range(levels - 2, -1, -1):
            st = self.pool_k[l]
            setattr(self, "up%d" % l, ConvT(w[l + 1], w[l], st, stride=st)
                    if up == "transposed" else Up(dims, w[l + 1], w[l], pool[l]))
            setattr(self, "dec%d" % l, Level(dims, 2 * w[l], w[l], norm, leaky_slope,
                                             kernel[l]))
            if deep_supervision and 1 <= l <= levels - 2:
                setattr(self, "ds%d" % l, Conv(w[l], classes, 1))
        self.head = Conv(w[0], classes, 1)

    def forward(self, x):
        skips = []
        for l in range(self.levels - 1):
            x = getattr(self, "enc%d" % l)(x)
            skips.append(x)
            x = self.maxpool(x, self.pool_k[l])
        x = self.bottleneck(x)
        ds = {}
        for l in range(self.levels - 2, -1, -1):
            x = getattr(self, "up%d" % l)(x)
            x = getattr(self, "dec%d" % l)(torch.cat([skips[l], x], 1))
            if hasattr(self, "ds%d" % l):
                ds[l] = getattr(self, "ds%d" % l)(x)
        return self.head(x), ds


def triples(text):
    """'1,2,2;2,2,2' -> [(1, 2, 2), (2, 2, 2)]; None for an absent key."""
    if not text:
        return None
    return [tuple(int(v) for v in x.split(",")) for x in text.split(";")]


def config_from_meta(meta):
    """UNet(**kwargs) from a dakd checkpoint's __metadata__ (keys dakd.config.*)."""
    g = lambda k, d=None: meta.get("dakd.config." + k, d)  # noqa: E731
    norm = {"0": "batch", "1": "instance", "2": "none", "batch": "batch",
            "instance": "instance", "none": "none"}[str(g("norm", "batch"))]
    up = {"0": "transposed", "1": "interp", "transposed": "transposed",
          "interp": "interp"}[str(g("up", "transposed"))]
    return dict(dims=int(g("dims")), in_channels=int(g("in_channels")),
                classes=int(g("classes")), base=int(g("base")), levels=int(g("levels")),
                norm=norm, up=up, deep_supervision=bool(int(g("deep_supervision", "0"))),
                leaky_slope=float(g("leaky_slope", "0")), pool=triples(g("pool")),
                kernel=triples(g("kernel")))
