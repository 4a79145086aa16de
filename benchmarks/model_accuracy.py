"""Dynamics-model accuracy against data size on ArmReach: GP, sparse GP, PE, MLP.

    .venv/bin/python benchmarks/model_accuracy.py [--sizes 200 500 ...] [--models gp pe ...]
                                                  [--json PATH] [--plot PATH] [--threads 2]

Data: ArmReach episodes (100 steps each), half random exploration and half goal-directed
(a Jacobian-transpose controller toward the target, with exploration noise). Training
sets are the first N transitions of one pool; the held-out set is separate episodes.

Metrics, over the state dimensions that change (the target's never does within an
episode), in units of the held-out standard deviation of each dimension's change Δs:
  MSE       mean squared error of the predicted mean (1.0 = predicting the average Δs)
  NLL       Gaussian negative log-likelihood per dimension (needs a variance)
  cover2σ   fraction of held-out targets within ±2σ (0.95 is calibrated)
plus the fit time and the prediction throughput at batch 10 000.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from tqdm import tqdm

from mbrl_control import ENV_ID
from mbrl_control.cli import parse_settings
from mbrl_control.data import TransitionDataset
from mbrl_control.models import make_model
from mbrl_control.tasks import make_env, model_layout, task_for

SIZES = (200, 500, 1000, 2000, 10_000, 50_000)
MODELS = {
    "gp": ("GP (exact)", "gp", {}),
    "sparse_gp": ("sparse GP", "gp", {"exact_limit": 0}),
    "pe": ("PE (5 members)", "pe", {}),
    "mlp": ("MLP (deterministic)", "mlp", {}),
}
HELD_OUT_EPISODES = 50
THROUGHPUT_BATCH = 10_000


def collect(episodes: int, seed: int, **env_options) -> TransitionDataset:
    """ArmReach transitions; even episodes random, odd ones goal-directed with noise."""
    env = gym.make(ENV_ID, **env_options)
    sim, step = env.unwrapped.sim, env.unwrapped.config.max_joint_step
    rng = np.random.default_rng(seed)
    data = TransitionDataset(env.observation_space.shape[0], env.action_space.shape[0])
    for episode in tqdm(range(episodes), desc="collecting ArmReach episodes", unit="ep", file=sys.stderr, leave=False):
        obs, _ = env.reset(seed=int(rng.integers(2**31)))
        goal_directed, done = episode % 2 == 1, False
        while not done:
            if goal_directed:
                q, ee, target = obs[:5], obs[10:13], obs[13:16]
                action = 4.0 * sim.ee_jacobian(q).T @ (target - ee) / step + rng.normal(0, 0.3, 5)
            else:
                action = rng.uniform(-1, 1, 5)
            action = np.clip(action, -1, 1)
            next_obs, _, terminated, truncated, _ = env.step(action)
            data.append(obs, action, next_obs, episode=episode, time=sim.time)
            obs, done = next_obs, terminated or truncated
    env.close()
    return data


def evaluate(model, test: TransitionDataset) -> dict[str, float]:
    obs, act, past = model.inputs(test)
    with torch.no_grad():
        prediction = model.predict(obs, act, past)
    delta = test.next_obs - test.obs
    scale = delta.std(0)
    moving = scale > 1e-9
    error = ((prediction.mean.double().numpy() - test.next_obs) / np.where(moving, scale, 1))[:, moving]
    var = (prediction.var.double().numpy() / np.where(moving, scale, 1) ** 2)[:, moving]
    metrics = {"mse": float((error**2).mean()), "nll": math.nan, "coverage_2sigma": math.nan}
    if np.all(var > 0):
        metrics["nll"] = float((0.5 * (error**2 / var + np.log(2 * math.pi * var))).mean())
        metrics["coverage_2sigma"] = float((np.abs(error) <= 2 * np.sqrt(var)).mean())
    repeats = math.ceil(THROUGHPUT_BATCH / len(obs))
    batch, batch_act, batch_past = (x.repeat(repeats, *[1] * (x.ndim - 1))[:THROUGHPUT_BATCH] for x in (obs, act, past))
    seconds = []
    with torch.no_grad():
        for _ in range(3):
            start = time.perf_counter()
            model.predict(batch, batch_act, batch_past)
            seconds.append(time.perf_counter() - start)
    metrics["rows_per_s"] = THROUGHPUT_BATCH / min(seconds)
    return metrics


def fmt(value: float, spec: str) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for key, (label, _, _) in MODELS.items():
        rows = [r for r in results if r["model"] == key and "mse" in r]
        if not rows:
            continue
        sizes = [r["size"] for r in rows]
        axes[0].plot(sizes, [r["mse"] for r in rows], "o-", label=label)
        if any(not math.isnan(r["nll"]) for r in rows):
            axes[1].plot(sizes, [r["nll"] for r in rows], "o-", label=label)
    for ax, name in zip(axes, ("held-out MSE (normalised)", "held-out NLL per dim")):
        ax.set_xscale("log")
        ax.set_xlabel("training transitions")
        ax.set_title(name)
        ax.grid(True, alpha=0.3)
    axes[0].set_yscale("log")
    axes[0].legend()
    fig.suptitle("Dynamics models on ArmReach")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--json", type=Path, help="write the numbers here")
    parser.add_argument("--plot", type=Path, default=Path("benchmarks/results/model_accuracy.png"))
    parser.add_argument("--threads", type=int, default=2, help="torch threads (2 = this machine's cores)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--arm", nargs="*", default=[], metavar="FIELD=VALUE",
                        help="ArmReach settings, e.g. action_latency=2 payload_mass=0.2")
    parser.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="settings of every model, e.g. history=0")
    args = parser.parse_args()
    env_options, model_settings = parse_settings(args.arm), parse_settings(args.set)
    torch.set_num_threads(args.threads)

    start = time.perf_counter()
    pool = collect(math.ceil(max(args.sizes) / 100), seed=args.seed, **env_options)
    test = collect(HELD_OUT_EPISODES, seed=args.seed + 1, **env_options)
    env = make_env(ENV_ID, **env_options)
    layout, derive = model_layout(env, task_for(env))  # as train_mbrl makes its models
    print(f"data: {len(pool)} training transitions, {len(test)} held out, "
          f"collected in {time.perf_counter() - start:.0f} s; torch threads {args.threads}", file=sys.stderr)

    results = []
    for size in args.sizes:
        train = pool.subset(np.arange(size))
        for key in args.models:
            label, name, overrides = MODELS[key]
            model = make_model(name, pool.obs_dim, pool.act_dim, derive=derive, **layout, **overrides, **model_settings)
            if key == "gp" and size > model.config.exact_limit:
                results.append({"model": key, "size": size,
                                "skipped": f"exact GP is O(N³); above exact_limit={model.config.exact_limit} use the sparse GP"})
                continue
            report = model.fit(train)
            row = {"model": key, "size": size, "fit_s": report.seconds, "epochs": report.epochs, **evaluate(model, test)}
            results.append(row)
            print(f"  {label:20s} N={size:6d}  fit {report.seconds:6.1f} s  MSE {row['mse']:.4f}  "
                  f"NLL {fmt(row['nll'], '.3f')}  cover2σ {fmt(row['coverage_2sigma'], '.3f')}", file=sys.stderr)

    print("\n| model | N | MSE | NLL | cover2σ | fit s | predict rows/s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in results:
        label = MODELS[row["model"]][0]
        if "skipped" in row:
            print(f"| {label} | {row['size']} | skipped: {row['skipped']} | | | | |")
            continue
        print(f"| {label} | {row['size']} | {row['mse']:.4f} | {fmt(row['nll'], '.3f')} | "
              f"{fmt(row['coverage_2sigma'], '.3f')} | {row['fit_s']:.1f} | {row['rows_per_s']:,.0f} |")
    print(f"\ntotal {time.perf_counter() - start:.0f} s")
    plot(results, args.plot)
    print(f"plot: {args.plot}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"results": results, "threads": args.threads, "held_out": len(test)}, indent=2))
        print(f"numbers: {args.json}")


if __name__ == "__main__":
    main()
