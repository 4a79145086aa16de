"""The ROS 2 graph against the library loop, on the same arm, settings and seeds.

    .venv/bin/python benchmarks/graph_vs_loop.py [--runs 5] [--episodes 10] [--model gp]
        [--set NODE.NAME=VALUE ...] [--json PATH] [--plot PATH]

``graph``: ``mbrl-control bringup sim`` (one process per node, over localhost DDS, in real
time), seed ``s`` for the simulator's targets and noise, the planner and the model. ``loop``:
:func:`mbrl_control.train_mbrl` with the same model, MPC and optimiser settings and seed
(one random episode, then MPC; the loop steps the simulator itself, so nothing is late).
Success is an episode ending within 2 cm of its target, as both report it.

For the graph it also reports what could make it differ, per episode from the bringup's
``episodes.csv`` and the collector's dataset:

* late ticks: simulator ticks whose command came a control period late (the planner took
  longer than the period, or was starved of CPU by the learner's fits);
* model lag: transitions recorded before the episode started that the planner's model had
  not been fitted on, in episodes (the loop's lag is 0: it fits between episodes);
* tick p95: the planner's compute per tick;
* lost transitions: control ticks of the episode without a recorded transition (a
  command no action in [-1, 1] explains, a state that came late);
* fit seconds: the learner's fits, as it logs them (median and max over the runs).

Runs are sequential (the graph needs both cores); a graph run takes about its episodes
× 5 s plus start-up, a loop run about as long.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PLANNER = {"horizon": 8, "optimizer.population": 64, "optimizer.iterations": 2}  # the defaults, stated
MPC = {"time_budget": 0.045}
EPISODE_LENGTH = 100


def graph_run(model: str, seed: int, episodes: int, settings: list[str], out: Path) -> dict:
    """One ``bringup sim`` run; per-episode success and the candidate causes."""
    sets = [f"*.seed={seed}"] + [f"mpc_planner.{k}={v}" for k, v in {**PLANNER, **MPC}.items()]
    sets += settings
    env = {**os.environ, "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST", "ROS_DOMAIN_ID": str(100 + seed % 100)}
    command = [sys.executable, "-m", "mbrl_control.cli", "bringup", "sim", "--model", model, "--episodes", str(episodes),
               "--out", str(out)] + [arg for item in sets for arg in ("--set", item)]
    start = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60 * (episodes + 5))
    seconds = time.perf_counter() - start
    if result.returncode != 0 or not (out / "episodes.csv").exists():
        raise RuntimeError(f"bringup failed ({result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    fits = [float(m.group(1)) for m in re.finditer(r"fit \d+: \S+ on \d+ transitions in ([0-9.]+) s", result.stdout + result.stderr)]
    with open(out / "episodes.csv") as f:
        rows = list(csv.DictReader(f))
    from mbrl_control.data.transitions import TransitionDataset

    data = TransitionDataset.load(out / "data" / "dataset.npz")
    recorded = {int(e): int((data.episode == e).sum()) for e in data.episodes}
    number = lambda value: float(value) if value not in ("", None) else float("nan")  # noqa: E731
    return {
        "seed": seed, "seconds": seconds,
        "success": [float(r["final_distance"]) < 0.02 for r in rows],
        "final_distance": [float(r["final_distance"]) for r in rows],
        "late_ticks": [number(r.get("late_ticks")) for r in rows],
        "tick_ms_p95": [number(r.get("tick_ms_p95")) for r in rows],
        "model_lag_episodes": [max(0.0, (i * EPISODE_LENGTH - number(r.get("model_transitions"))) / EPISODE_LENGTH)
                               if number(r.get("model_transitions")) > 0 else float("nan") for i, r in enumerate(rows)],
        "lost_transitions": [EPISODE_LENGTH - recorded.get(i, 0) for i in range(len(rows))],
        "fit_seconds": fits,
    }


def loop_run(model: str, seed: int, episodes: int) -> dict:
    import torch

    from mbrl_control import ENV_ID, train_mbrl

    torch.set_num_threads(1)
    start = time.perf_counter()
    result = train_mbrl(ENV_ID, model=model, episodes=episodes, seed=seed, **PLANNER, **MPC)
    return {"seed": seed, "seconds": time.perf_counter() - start, "success": [bool(s) for s in result.successes],
            "final_distance": result.final_distances}


def rate(runs: list[dict], key: str, episode: int) -> float:
    values = [r[key][episode] for r in runs if episode < len(r[key])]
    return float(np.nanmean(values)) if values and not np.all(np.isnan(values)) else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--model", default="gp")
    parser.add_argument("--set", action="append", default=[], metavar="NODE.NAME=VALUE", help="more bringup parameters (the graph only)")
    parser.add_argument("--only", choices=("graph", "loop"), help="run one side only")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args()

    graph, loop = [], []
    with tempfile.TemporaryDirectory(prefix="graph_vs_loop_") as scratch:
        for seed in range(args.runs):
            if args.only != "loop":
                graph.append(graph_run(args.model, seed, args.episodes, args.set, Path(scratch) / f"graph_{seed}"))
                print(f"graph seed {seed}: {''.join('x' if s else '.' for s in graph[-1]['success'])}  "
                      f"({graph[-1]['seconds']:.0f} s)", flush=True)
            if args.only != "graph":
                loop.append(loop_run(args.model, seed, args.episodes))
                print(f"loop  seed {seed}: {''.join('x' if s else '.' for s in loop[-1]['success'])}  "
                      f"({loop[-1]['seconds']:.0f} s)", flush=True)

    print(f"\n{args.model}, {args.runs} runs each; success = final distance < 2 cm"
          + (f"; graph settings {' '.join(args.set)}" if args.set else ""))
    print("| episode | graph success | loop success | graph late ticks | graph model lag (episodes) | graph tick p95 ms | graph lost transitions |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for e in range(args.episodes):
        cells = [rate(graph, "success", e), rate(loop, "success", e), rate(graph, "late_ticks", e),
                 rate(graph, "model_lag_episodes", e), rate(graph, "tick_ms_p95", e), rate(graph, "lost_transitions", e)]
        print(f"| {e} | " + " | ".join("–" if np.isnan(c) else f"{c:.0%}" if i < 2 else f"{c:.1f}" for i, c in enumerate(cells)) + " |")
    fits = [f for r in graph for f in r.get("fit_seconds", [])]
    if fits:
        print(f"graph: {len(fits)} fits, median {np.median(fits):.1f} s, max {max(fits):.1f} s")
    summary = {}
    for name, runs in (("graph", graph), ("loop", loop)):
        later = [s for r in runs for s in r["success"][3:]]
        after_success = [d for r in runs for i, d in enumerate(r["final_distance"])
                         if any(r["success"][:i]) and d is not None]
        summary[name] = {"success_from_3": float(np.mean(later)) if later else float("nan"),
                         "worst_after_first_success_m": max(after_success) if after_success else float("nan")}
        print(f"{name}: success from episode 3 on {summary[name]['success_from_3']:.0%}; "
              f"worst final distance after the first success {summary[name]['worst_after_first_success_m']:.3f} m")
    if graph and loop:
        gap = 100 * (summary["graph"]["success_from_3"] - summary["loop"]["success_from_3"])
        print(f"graph - loop from episode 3 on: {gap:+.0f} percentage points (target: within ±10)")
    if args.json:
        args.json.write_text(json.dumps({"model": args.model, "settings": args.set, "graph": graph, "loop": loop,
                                         "summary": summary}, indent=1))
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 3.5))
        for name, runs in (("graph (bringup sim)", graph), ("loop (train_mbrl)", loop)):
            if runs:
                ax.plot(range(args.episodes), [rate(runs, "success", e) for e in range(args.episodes)], "o-", label=name)
        ax.set(xlabel="episode", ylabel=f"success over {args.runs} runs", ylim=(-0.05, 1.05), title=f"graph vs loop, {args.model}")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
