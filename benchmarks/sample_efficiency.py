"""Sample efficiency of model-based RL on ArmReach: success and final distance per episode.

    .venv/bin/python benchmarks/sample_efficiency.py [--seeds 5] [--episodes 6]
        [--methods ensemble-cem gp-cem ensemble-mppi] [--pets] [--workers 2]
        [--json PATH] [--plot PATH]

Each method runs :func:`mbrl_control.train_mbrl` from scratch (one episode of random
actions, then MPC, the model refitted after every episode) for every seed; a seed fixes
the targets, so every method meets the same targets. Episode k (0 = the random one) has
used 100·k environment steps before it starts. ``--pets`` adds ensemble-CEM at PETS's
published search (population 350, 5 iterations, horizon 15, 20 particles; ~1.4 s per
step on 2 cores, so a seed takes about 15 minutes). Runs are independent processes, one
torch thread each (``--workers`` at a time).

``--model-free STEPS`` trains the project's PPO for that many steps and reports the
environment steps it needs to reach the success rate MBRL reached, as a ratio.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

METHODS = {
    "ensemble-cem": {"model": "ensemble", "planner": "cem"},
    "gp-cem": {"model": "gp", "planner": "cem"},
    "gp-cem-mean": {"model": "gp", "planner": "cem", "propagation": "expectation"},
    "ensemble-mppi": {"model": "ensemble", "planner": "mppi"},
    "ensemble-cem-gradient": {"model": "ensemble", "planner": "cem_gradient"},
    "ensemble-cem @ PETS search": {"model": "ensemble", "planner": "cem", "horizon": 15, "particles": 20,
                                   "population": 350, "elites": 35, "planner_overrides": {"iterations": 5}},
}


def run(method: str, seed: int, episodes: int) -> dict:
    import torch

    from mbrl_control import ENV_ID, train_mbrl

    torch.set_num_threads(1)
    start = time.perf_counter()
    result = train_mbrl(ENV_ID, episodes=episodes, seed=seed, **METHODS[method])
    return {"method": method, "seed": seed, "seconds": time.perf_counter() - start,
            "success": [bool(s) for s in result.successes], "final_distance": result.final_distances,
            "planning_hz": [e.planning_hz for e in result.episodes[1:]]}


def model_free_curve(steps: int, seed: int = 0) -> list[tuple[int, float]]:
    """(env steps, success rate of the deterministic policy over 20 episodes) for the
    project's PPO on ArmReach at the zoo settings of benchmarks/policy_gradient.py."""
    import torch

    from mbrl_control import ENV_ID
    from mbrl_control.policies import train_policy

    sys.path.insert(0, str(Path(__file__).parent))
    from policy_gradient import ZOO_PPO

    torch.set_num_threads(1)
    result = train_policy(ENV_ID, algo="ppo", total_steps=steps, seed=seed, eval_every=5000, eval_episodes=20,
                          progress=True, **ZOO_PPO)
    return result.success_curve


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--episodes", type=int, default=6, help="episodes per run, the random one included")
    parser.add_argument("--methods", nargs="+", default=["ensemble-cem", "gp-cem", "ensemble-mppi"], choices=list(METHODS))
    parser.add_argument("--pets", action="store_true", help="add ensemble-CEM at PETS's published search (slow)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--model-free", type=int, default=0, metavar="STEPS",
                        help="also train the project's PPO for this many env steps and compare the steps to the same success")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args()
    methods = args.methods + (["ensemble-cem @ PETS search"] if args.pets else [])

    from tqdm import tqdm

    jobs = [(m, s) for m in methods for s in range(args.seeds)]
    runs = []
    with ProcessPoolExecutor(args.workers) as pool, tqdm(total=len(jobs), unit="run", file=sys.stderr) as bar:
        for result in pool.map(run, *zip(*jobs), [args.episodes] * len(jobs)):
            runs.append(result)
            bar.update()

    table = {}
    for method in methods:
        mine = [r for r in runs if r["method"] == method]
        success = np.array([r["success"] for r in mine], dtype=float)  # [seeds, episodes]
        distance = np.array([r["final_distance"] for r in mine], dtype=float)
        table[method] = {"success_rate": success.mean(0).tolist(), "median_final_distance": np.median(distance, 0).tolist(),
                         "mean_planning_hz": float(np.nanmean([h for r in mine for h in r["planning_hz"]])),
                         "seconds_per_run": float(np.mean([r["seconds"] for r in mine]))}

    episodes = range(args.episodes)
    print(f"\nArmReach, {args.seeds} seeds; episode 0 is random actions; success = final distance < 2 cm\n")
    header = f"{'method':28s} " + " ".join(f"{'ep' + str(k):>7s}" for k in episodes) + f" {'plan Hz':>8s} {'s/run':>7s}"
    print("success rate")
    print(header)
    for method, row in table.items():
        print(f"{method:28s} " + " ".join(f"{v:7.0%}" for v in row["success_rate"])
              + f" {row['mean_planning_hz']:8.1f} {row['seconds_per_run']:7.0f}")
    print("\nmedian final distance (m)")
    print(header)
    for method, row in table.items():
        print(f"{method:28s} " + " ".join(f"{v:7.3f}" for v in row["median_final_distance"]))

    free = None
    if args.model_free:
        # MBRL: the best success rate any method reached, and the env steps until the end of
        # the first episode that reached it (episode k ends after 100·(k+1) steps)
        method, row = max(table.items(), key=lambda item: max(item[1]["success_rate"]))
        target = max(row["success_rate"])
        mbrl_steps = 100 * (1 + next(k for k, rate in enumerate(row["success_rate"]) if rate >= target))
        curve = model_free_curve(args.model_free)
        reached = next((steps for steps, rate in curve if rate >= target), None)
        best_steps, best_rate = max(curve, key=lambda point: point[1])
        free = {"learner": "project PPO (zoo Reacher settings)", "budget": args.model_free, "target": target,
                "mbrl_method": method, "mbrl_steps": mbrl_steps, "steps": reached, "curve": curve}
        print(f"\nmodel-free (project PPO, 20 eval episodes every 5000 steps) to {target:.0%} success, "
              f"which {method} reached after {mbrl_steps} steps:")
        if reached is None:
            print(f"  not reached in {args.model_free} steps (best {best_rate:.0%} at {best_steps}): "
                  f"ratio > {args.model_free / mbrl_steps:.0f}x")
        else:
            print(f"  {reached} steps: {reached / mbrl_steps:.0f}x the environment steps of MBRL")

    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
        for method, row in table.items():
            left.plot(list(episodes), row["success_rate"], "o-", label=method)
            right.semilogy(list(episodes), row["median_final_distance"], "o-", label=method)
        left.set(xlabel="episode (100 steps each; 0 = random)", ylabel="success rate", ylim=(-0.05, 1.05))
        right.axhline(0.02, color="gray", linestyle=":", label="success distance")
        right.set(xlabel="episode", ylabel="median final distance (m)")
        right.legend(fontsize=8)
        fig.tight_layout()
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.plot, dpi=100)
        print(f"wrote {args.plot}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"runs": runs, "table": table, "model_free": free}, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
