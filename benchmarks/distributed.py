"""Out of one process: the simulated arm learning with its learner on another host, and two
arms feeding one learner, against one arm with everything on one host. Same seeds.

    .venv/bin/python benchmarks/distributed.py [--runs 2] [--episodes 10] [--json PATH] [--plot PATH]

Set-ups (each ``mbrl-control bringup sim``, one process per node, real DDS, real time):

* ``one host``: sim, collector, learner and planner on this machine (localhost DDS);
* ``two hosts``: the learner on a "workstation", the rest beside the arm: two network
  namespaces joined by a veth pair, DDS over UDP on that link only (needs root; skipped
  with the reason otherwise);
* ``two arms``: ``arm1`` and ``arm2`` (sim, collector, planner, each in its namespace)
  and one learner with ``arms: [arm1, arm2]``, all on this machine: both arms' episodes
  feed one model, which both planners use.

Per arm and run: the episode of the first success (final distance < 2 cm), env steps to it
(episodes × 100 ticks), the episode the first model arrived in, successes over the
episodes after the third, and the simulator's late ticks (commands a period late: on 2
cores two planners and a learner compete). Runs are sequential.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "test"))
from rosutil import NamespacesUnavailable, TwoHosts  # noqa: E402

EPISODE_LENGTH = 100
BRINGUP = [sys.executable, "-m", "mbrl_control.cli", "bringup", "sim"]
ARM_NODES = "sim_node,data_collector,mpc_planner"


def local_env(domain: int) -> dict[str, str]:
    return {**os.environ, "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST", "ROS_DOMAIN_ID": str(domain)}


def arm_result(out: Path) -> dict:
    """What one arm's ``episodes.csv`` says."""
    with open(out / "episodes.csv") as f:
        rows = list(csv.DictReader(f))
    final = [float(r["final_distance"]) for r in rows]
    success = [d < 0.02 for d in final]
    first = next((i for i, s in enumerate(success) if s), None)
    model = next((i for i, r in enumerate(rows) if int(r["model_transitions"] or 0) > 0), None)
    late = [int(r["late_ticks"]) for r in rows if r.get("late_ticks") not in ("", None)]
    return {"final_distance": final, "success": success, "first_success": first,
            "steps_to_success": None if first is None else (first + 1) * EPISODE_LENGTH,
            "first_model_episode": model, "success_after_3": float(np.mean(success[3:])) if len(success) > 3 else float("nan"),
            "late_ticks": int(np.sum(late)) if late else 0}


def finish(learner: subprocess.Popen) -> None:
    learner.send_signal(signal.SIGINT)
    try:
        learner.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        learner.kill()
        learner.communicate()


def run_checked(command: list[str], **kwargs) -> None:
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command[-8:])} failed ({result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")


def one_host(seed: int, episodes: int, work: Path) -> dict[str, dict]:
    out = work / "one_host"
    run_checked([*BRINGUP, "--episodes", str(episodes), "--out", str(out), "--set", f"*.seed={seed}"],
                env=local_env(100 + seed), cwd=work, timeout=60 * (episodes + 5))
    return {"arm": arm_result(out)}


def two_hosts(seed: int, episodes: int, work: Path) -> dict[str, dict]:
    with TwoHosts() as (arm, ws):
        domain = 100 + seed
        learner = subprocess.Popen(ws.command(*BRINGUP, "--nodes", "dynamics_learner", "--out", str(work / "ws"), "--set", f"*.seed={seed}"),
                                   env=ws.env(arm, work / "ws_home", domain), cwd=work,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            run_checked(arm.command(*BRINGUP, "--nodes", ARM_NODES, "--episodes", str(episodes), "--out", str(work / "arm"),
                                    "--set", f"*.seed={seed}"),
                        env=arm.env(ws, work / "arm_home", domain), cwd=work, timeout=60 * (episodes + 5))
        finally:
            finish(learner)
    return {"arm": arm_result(work / "arm")}


def two_arms(seed: int, episodes: int, work: Path) -> dict[str, dict]:
    env = local_env(100 + seed)
    learner = subprocess.Popen([*BRINGUP, "--nodes", "dynamics_learner", "--out", str(work / "learner"), "--set", f"*.seed={seed}",
                                "--set", 'dynamics_learner.arms=["arm1", "arm2"]'],
                               env=env, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    arms = {}
    try:
        for k, name in enumerate(("arm1", "arm2")):  # each arm its own targets and noise
            arms[name] = subprocess.Popen([*BRINGUP, "--nodes", ARM_NODES, "--namespace", name, "--episodes", str(episodes),
                                           "--out", str(work / name), "--set", f"*.seed={seed}", "--set", f"sim_node.seed={seed + 1000 * (k + 1)}"],
                                          env=env, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for name, process in arms.items():
            output, _ = process.communicate(timeout=60 * (episodes + 5))
            if process.returncode != 0:
                raise RuntimeError(f"{name} failed ({process.returncode}):\n{output[-2000:]}")
    finally:
        for process in arms.values():
            if process.poll() is None:
                process.kill()
        finish(learner)
    return {name: arm_result(work / name) for name in arms}


SETUPS = {"one host": one_host, "two hosts": two_hosts, "two arms": two_arms}


def summarise(values: list) -> str:
    values = [v for v in values if v is not None and not (isinstance(v, float) and np.isnan(v))]
    return "-" if not values else f"{np.mean(values):.1f}" if len(values) > 1 else f"{values[0]:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--setups", default=",".join(SETUPS), help="comma-separated, of: " + ", ".join(SETUPS))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args()
    results: dict[str, list[dict]] = {}  # "setup / arm" -> one result per run
    skipped: dict[str, str] = {}
    for name in args.setups.split(","):
        for seed in range(args.runs):
            with tempfile.TemporaryDirectory(prefix="mbrl_distributed_") as work:
                start = time.perf_counter()
                try:
                    per_arm = SETUPS[name](seed, args.episodes, Path(work))
                except NamespacesUnavailable as err:
                    skipped[name] = str(err)
                    break
                seconds = time.perf_counter() - start
            for arm, result in per_arm.items():
                results.setdefault(f"{name} / {arm}", []).append({"seed": seed, "seconds": seconds, **result})
                print(f"{name:9s} {arm:5s} seed {seed}: first success at episode {result['first_success']}, "
                      f"first model in episode {result['first_model_episode']}, success after episode 3 "
                      f"{result['success_after_3']:.0%}, late ticks {result['late_ticks']}, {seconds:.0f} s", flush=True)
    print(f"\n{args.runs} runs of {args.episodes} episodes; success = final distance < 2 cm; episode 0 explores\n")
    header = ("set-up / arm", "first success (episode)", "env steps to it", "first model (episode)", "success after ep. 3", "late ticks / run")
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for key, runs in results.items():
        print(" | ".join([key, summarise([r["first_success"] for r in runs]), summarise([r["steps_to_success"] for r in runs]),
                          summarise([r["first_model_episode"] for r in runs]),
                          f"{np.nanmean([r['success_after_3'] for r in runs]):.0%}", summarise([r["late_ticks"] for r in runs])]))
    for name, reason in skipped.items():
        print(f"{name}: skipped ({reason})")
    if args.json:
        args.json.write_text(json.dumps({"episodes": args.episodes, "results": results, "skipped": skipped}, indent=1))
    if args.plot and results:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4))
        for key, runs in results.items():
            ax.plot(np.median([r["final_distance"] for r in runs], axis=0), marker="o", label=key)
        ax.axhline(0.02, color="grey", linestyle=":", label="2 cm")
        ax.set(xlabel="episode", ylabel="median final distance (m)", yscale="log", title="distributed learning on ArmReach")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
