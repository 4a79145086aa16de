"""Planning-step latency of MPC on ArmReach: optimisers × models × torch threads × CPU load.

    .venv/bin/python benchmarks/planning_rate.py [--ticks 30] [--quick] [--json PATH]

Every row times ``MPCController.act`` (one full replan, warm-started from the previous
tick) on states of a recorded ArmReach episode and reports the median and p95 latency and
the rate they allow. Models are fitted briefly on random ArmReach data: their weights do
not change the cost. Configurations:

  default    the library defaults (MPCConfig and the optimiser's config)
  PETS       PETS's published search: population 350, 35 elites, 5 CEM iterations,
             horizon 15, 20 particles TS∞, E = 5 members of 4 × 200 layers
  + policy   a quarter of CEM's population with 4 proposals from a policy (the MLP
             DAgger and MBRL 2.0 train, 2 × 256, untrained: its weights do not change
             the cost either), chosen as CEM's first samples are rolled out

"under load" runs one extra process that keeps a core busy (a robot computer also runs its
drivers). The largest CEM population whose p95 fits 20 ms (50 Hz) is searched at the
default horizon and particles. For the PETS search, the network's arithmetic per planning
step is divided by the step time (achieved GFLOP/s) and set next to the same chain of
batched matmuls alone (torch.baddbmm on the same shapes, no activations, sampling or
reward), measured in the same run. ``pytorch_mppi``'s MPPI runs on the same ensemble where
that package is installed.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from mbrl_control import ENV_ID
from mbrl_control.data import TransitionDataset
from mbrl_control.arm.interface import ArmInterface
from mbrl_control.arm.reach import ReachConfig
from mbrl_control.arm.sim import SimConfig
from mbrl_control.models import make_model
from mbrl_control.planning.mpc import MPCConfig, MPCController
from mbrl_control.planning.optimizers import CEMConfig

PETS = {"horizon": 15, "particles": 20, "optimizer": "cem"}
PETS_CEM = {"population": 350, "elites": 35, "iterations": 5}
BUDGET_50HZ = 0.020


def spin(stop) -> None:
    """Keep one core busy until ``stop`` is set."""
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


class Load:
    """A competing process on one core, for the ``with`` block."""

    def __init__(self, on: bool) -> None:
        self.on = on

    def __enter__(self):
        if self.on:
            self.stop = multiprocessing.Event()
            self.process = multiprocessing.Process(target=spin, args=(self.stop,), daemon=True)
            self.process.start()
            time.sleep(0.2)
        return self

    def __exit__(self, *exc) -> None:
        if self.on:
            self.stop.set()
            self.process.join()


ARM = ArmInterface.from_configs(SimConfig(), ReachConfig())  # the layout the nodes give ArmReach's models


def record(episodes: int, seed: int) -> tuple[TransitionDataset, np.ndarray]:
    """Random ArmReach transitions and the states of one episode to plan from."""
    env = gym.make(ENV_ID)
    rng = np.random.default_rng(seed)
    data = TransitionDataset(16, 5)
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        for _ in range(100):
            action = rng.uniform(-1, 1, 5).astype(np.float32)
            next_obs, *_ = env.step(action)
            data.append(obs, action, next_obs, episode=episode)
            obs = next_obs
    return data, data.obs[:100]


def proposing_policy():
    """The policy the policy-in-the-planner rows propose with (untrained)."""
    from mbrl_control.policies.config import MODEL_BASED_NETWORK, PolicyConfig
    from mbrl_control.policies.train import make_networks

    return make_networks(16, -np.ones(5), np.ones(5), PolicyConfig(relative_goal=3).replace(**MODEL_BASED_NETWORK))[0]


def time_controller(model, states: np.ndarray, ticks: int, mpc: dict, optimizer: dict) -> dict:
    env = gym.make(ENV_ID).unwrapped
    controller = MPCController(model, env.reward_fn, -np.ones(5), np.ones(5), optimizer_overrides=optimizer, **mpc)
    if mpc.get("proposals"):
        controller.set_policy(proposing_policy())
    for obs in states[:3]:  # warm-up: allocator, caches
        controller.act(obs)
    controller.planning_times.clear()
    for obs in states[3 : 3 + ticks]:
        controller.act(obs)
    times = np.asarray(controller.planning_times)
    return {"median_ms": 1e3 * float(np.median(times)), "p95_ms": 1e3 * float(np.percentile(times, 95)),
            "hz": 1.0 / float(np.median(times)), "ticks": len(times)}


def network_flops(model) -> float:
    """Multiply-adds × 2 of one row through one member's network."""
    return float(sum(2 * layer.weight.shape[1] * layer.weight.shape[2] for layer in [*model.regressor.network.hidden, model.regressor.network.head]))


def raw_matmul_seconds(model, rows: int, repeats: int) -> float:
    """One pass of ``rows`` rows through the same chain of batched matmuls, seconds."""
    layers = [*model.regressor.network.hidden, model.regressor.network.head]
    E = layers[0].weight.shape[0]
    x = torch.randn(E, rows // E, layers[0].weight.shape[1])
    best = float("inf")
    with torch.no_grad():
        for _ in range(repeats):
            start = time.perf_counter()
            h = x
            for layer in layers:
                h = torch.baddbmm(layer.bias, h, layer.weight)
            best = min(best, time.perf_counter() - start)
    return best


def pytorch_mppi_row(model, states, ticks, population, horizon) -> dict | None:
    try:
        from pytorch_mppi import MPPI as ReferenceMPPI
    except ImportError:
        return None
    env = gym.make(ENV_ID).unwrapped

    def dynamics(state, action):
        return model.sample(state, action) if len(state) % model.members == 0 else model.predict_mean(state, action)

    def running_cost(state, action):
        return -env.reward_fn(state, action, state)

    controller = ReferenceMPPI(dynamics, running_cost, 16, torch.eye(5) * 0.09, num_samples=population, horizon=horizon,
                               u_min=-torch.ones(5), u_max=torch.ones(5), lambda_=0.1)
    times = []
    for obs in states[: 3 + ticks]:
        start = time.perf_counter()
        with torch.no_grad():
            controller.command(torch.as_tensor(obs, dtype=torch.float32))
        times.append(time.perf_counter() - start)
    times = np.asarray(times[3:])
    return {"median_ms": 1e3 * float(np.median(times)), "p95_ms": 1e3 * float(np.percentile(times, 95)), "hz": 1 / float(np.median(times))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ticks", type=int, default=30, help="timed planning steps per row")
    parser.add_argument("--quick", action="store_true", help="idle only, fewer rows (a smoke run)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()

    data, states = record(5, seed=0)
    torch.set_num_threads(2)
    models = {
        "PE (E=5, 4×200)": make_model("ensemble", 16, 5, derive=ARM.derive, bounds=ARM.model_bounds, **ARM.MODEL_LAYOUT, max_steps=300),
        "GP (exact, 500 pts)": make_model("gp", 16, 5, derive=ARM.derive, bounds=ARM.model_bounds, **ARM.MODEL_LAYOUT, iterations=20),
    }
    for name, model in models.items():
        model.fit(data)
    pe = models["PE (E=5, 4×200)"]
    defaults = MPCConfig()
    print(f"default MPC: horizon {defaults.horizon}, particles {defaults.particles}, {defaults.propagation}, "
          f"optimizer {defaults.optimizer}; planning from {args.ticks} states of a recorded episode\n")

    rows = []
    loads = (False,) if args.quick else (False, True)
    threads_list = (1, 2)
    cases = [(model_name, planner, {"optimizer": planner}, {}) for model_name in models
             for planner in ("cem", "mppi", "random", "gradient", "cem_gradient")]
    if args.quick:
        cases = [c for c in cases if c[1] in ("cem", "mppi") and c[0].startswith("PE")]
    cases.insert(1, ("PE (E=5, 4×200)", "cem, 20 particles", {"particles": 20}, {}))
    cem = CEMConfig()
    quarter = {"population": cem.population // 4, "elites": cem.elites // 4}
    cases.insert(2, ("PE (E=5, 4×200)", f"cem {quarter['population']}", {}, quarter))
    cases.insert(3, ("PE (E=5, 4×200)", f"cem {quarter['population']} + policy (4)", {"proposals": 4}, quarter))
    if not args.quick:
        cases.append(("GP (exact, 500 pts)", "cem, mean propagation", {"propagation": "expectation"}, {}))
    cases.append(("PE (E=5, 4×200)", "cem @ PETS search", PETS, PETS_CEM))
    header = f"{'model':22s} {'optimiser':20s} {'threads':>7s} {'load':>5s} {'median ms':>10s} {'p95 ms':>8s} {'Hz':>7s}"
    print(header)
    print("-" * len(header))
    for load in loads:
        with Load(load):
            for threads in threads_list:
                torch.set_num_threads(threads)
                for model_name, label, mpc, optimizer in cases:
                    ticks = min(args.ticks, 5) if "PETS" in label or model_name.startswith("GP") else args.ticks
                    result = time_controller(models[model_name], states, ticks, {**mpc, "threads": threads}, optimizer)
                    row = {"model": model_name, "optimizer": label, "threads": threads, "load": load, **result}
                    rows.append(row)
                    print(f"{model_name:22s} {label:20s} {threads:7d} {'yes' if load else 'no':>5s} "
                          f"{row['median_ms']:10.1f} {row['p95_ms']:8.1f} {row['hz']:7.1f}", flush=True)

    # the largest CEM search inside 20 ms, idle, best thread count
    fits = []
    for threads in threads_list:
        torch.set_num_threads(threads)
        for population in (25, 50, 100, 150, 200, 300, 400, 600):
            result = time_controller(pe, states, args.ticks, {"threads": threads},
                                     {"population": population, "elites": max(1, population // 10)})
            fits.append({"threads": threads, "population": population, **result})
            if result["p95_ms"] > 1e3 * BUDGET_50HZ:
                break
    inside = [f for f in fits if f["p95_ms"] <= 1e3 * BUDGET_50HZ]
    largest = max(inside, key=lambda f: f["population"]) if inside else None
    print(f"\nlargest CEM population with p95 <= 20 ms (horizon {defaults.horizon}, {defaults.particles} particles): "
          + (f"{largest['population']} at {largest['threads']} thread(s), p95 {largest['p95_ms']:.1f} ms" if largest else "none"))

    # achieved GFLOP/s at the PETS search vs the raw matmuls of the same shapes
    torch.set_num_threads(2)
    per_row = network_flops(pe)
    rows_per_call = PETS_CEM["population"] * PETS["particles"]
    calls = PETS["horizon"] * PETS_CEM["iterations"]  # model steps: the final mean is not scored again
    flop = per_row * calls * rows_per_call
    pets = next(r for r in rows if r["optimizer"] == "cem @ PETS search" and r["threads"] == 2 and not r["load"])
    planner_gflops = flop / (pets["median_ms"] / 1e3) / 1e9
    raw = raw_matmul_seconds(pe, rows_per_call, repeats=10)
    raw_gflops = per_row * rows_per_call / raw / 1e9
    print(f"PETS search: {flop / 1e9:.1f} GFLOP per planning step; planner {planner_gflops:.1f} GFLOP/s, "
          f"raw baddbmm chain {raw_gflops:.1f} GFLOP/s -> {planner_gflops / raw_gflops:.0%} of raw (2 threads, idle)")

    reference = pytorch_mppi_row(pe, states, args.ticks, population=400, horizon=defaults.horizon)
    ours = next((r for r in rows if r["optimizer"] == "mppi" and r["threads"] == 2 and not r["load"] and r["model"].startswith("PE")), None)
    if reference is None:
        print("pytorch_mppi not installed: no side-by-side MPPI row (pip install pytorch_mppi to add it)")
    elif ours is not None:
        print(f"pytorch_mppi MPPI, same ensemble: median {reference['median_ms']:.1f} ms; ours {ours['median_ms']:.1f} ms "
              f"(ratio {reference['median_ms'] / ours['median_ms']:.2f})")

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "rows": rows, "fits_50hz": fits, "largest_50hz": largest,
            "pets": {"gflop": flop / 1e9, "planner_gflops": planner_gflops, "raw_gflops": raw_gflops},
            "pytorch_mppi": reference, "defaults": defaults.to_dict(),
        }, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
