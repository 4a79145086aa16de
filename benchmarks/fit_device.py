"""Ensemble fit time on the CPU and on a GPU (``device``), at 10k and 50k transitions of
ArmReach: where a workstation with a GPU earns its place as the learner.

    .venv/bin/python benchmarks/fit_device.py [--sizes 10000 50000] [--epochs 20] [--threads 2] [--json PATH]

Each fit trains the default ensemble (7 members, 4×200) for ``--epochs`` epochs (no early
stopping, so every row does the same work) from random-action episodes; it reports seconds
per fit and per epoch, and the held-out MSE of the result (the same on every device, up to
float noise). Without CUDA the GPU rows say so.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from mbrl_control.arm.env import ArmReach
from mbrl_control.loops.mbrl import explore
from mbrl_control.models import make_model
from mbrl_control.tasks import model_layout, task_for


def held_out_mse(model, data) -> float:
    with torch.no_grad():
        obs, act, past = model.inputs(data)
        predicted = model.predict_mean(obs, act, past)
    return float(torch.mean((predicted - torch.as_tensor(data.next_obs, dtype=torch.float32)) ** 2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    env = ArmReach()
    layout, derive = model_layout(env, task_for(env))
    data = explore(env, episodes=max(args.sizes) // 100 + 10, seed=0)
    env.close()
    test = data.subset(data.episode >= data.episodes[-10])
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = []
    for size in args.sizes:
        train = data.subset(np.arange(size))
        for device in devices:
            model = make_model("ensemble", data.obs_dim, data.act_dim, derive=derive, **layout, device=device,
                               max_epochs=args.epochs, patience=10**6, max_steps=10**9)
            start = time.perf_counter()
            report = model.fit(train)
            seconds = time.perf_counter() - start
            rows.append({"transitions": size, "device": device, "seconds": seconds, "epochs": report.epochs,
                         "seconds_per_epoch": seconds / max(report.epochs, 1), "held_out_mse": held_out_mse(model, test)})
            print(f"{size:6d} transitions on {device}: {seconds:7.1f} s ({rows[-1]['seconds_per_epoch']:.2f} s/epoch), "
                  f"held-out MSE {rows[-1]['held_out_mse']:.4f}", flush=True)
    print(f"\nensemble fit, {args.epochs} epochs, {args.threads} CPU threads; torch {torch.__version__}\n")
    print("transitions | device | fit (s) | s/epoch | held-out MSE | vs CPU")
    print("--- | --- | --- | --- | --- | ---")
    for row in rows:
        cpu = next(r for r in rows if r["transitions"] == row["transitions"] and r["device"] == "cpu")
        print(f"{row['transitions']} | {row['device']} | {row['seconds']:.1f} | {row['seconds_per_epoch']:.2f} | "
              f"{row['held_out_mse']:.4f} | {cpu['seconds'] / row['seconds']:.1f}×")
    if "cuda" not in devices:
        print(f"cuda: not measured (torch {torch.__version__} sees no CUDA device here)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
