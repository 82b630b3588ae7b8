#!/usr/bin/python3
"""Run torch.optim.SGD or AdamW (float32, CPU, one parameter group, the single-tensor code
path) on the cases in a JSON file and print the parameter after every step: one line per
step, cases one after another, each value as %.9e (enough digits to recover the float32).

Input: a list of {"opt": "sgd" | "adamw", "lr": [lr per step], "w": [w0...],
"grads": [[g...] per step], "momentum": m, "nesterov": 0|1, "weight_decay": wd,
"beta1": b1, "beta2": b2, "eps": e}. Used by tests/nn/test_params.c as the PyTorch oracle
for dk_optim_step; one process for all cases because importing torch takes seconds."""
import json
import sys

import torch


def run(case):
    w = torch.nn.Parameter(torch.tensor(case["w"], dtype=torch.float32))
    if case["opt"] == "sgd":
        opt = torch.optim.SGD([w], lr=case["lr"][0], momentum=case["momentum"], dampening=0.0,
                              nesterov=bool(case["nesterov"]),
                              weight_decay=case["weight_decay"], foreach=False)
    else:
        opt = torch.optim.AdamW([w], lr=case["lr"][0], betas=(case["beta1"], case["beta2"]),
                                eps=case["eps"], weight_decay=case["weight_decay"],
                                foreach=False)
    for lr, g in zip(case["lr"], case["grads"]):
        opt.param_groups[0]["lr"] = lr
        w.grad = torch.tensor(g, dtype=torch.float32)
        opt.step()
        print(" ".join("%.9e" % x for x in w.detach().numpy().tolist()))


for c in json.load(open(sys.argv[1])):
    run(c)
