"""Speed of the simulated arm: physics steps/s, control ticks/s and env steps/s.

    .venv/bin/python benchmarks/sim_speed.py [--ticks 4000] [--repeats 3]

Rows are measured side by side in one run (best of ``--repeats``), so ratios between
them hold on a noisy machine. "real-time factor" is simulated seconds per wall second.
"""

from __future__ import annotations

import argparse
import time
from typing import Callable

import gymnasium as gym
import mujoco
import numpy as np

from mbrl_control import ENV_ID
from mbrl_control.arm.sim import ArmSim, SimConfig


def best_rate(run: Callable[[int], None], ticks: int, repeats: int) -> float:
    """Best ticks per second of ``run(ticks)`` over ``repeats`` tries."""
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(ticks)
        rates.append(ticks / (time.perf_counter() - start))
    return max(rates)


def raw_physics(sim: ArmSim) -> Callable[[int], None]:
    """mj_step alone, all steps of a tick in one C call: the floor under any servo model."""
    sim.reset(np.array([0.3, 0.6, 0.9, 0.5, 0.2]), np.array([0.2, 0.0, 0.1]))

    def run(ticks: int) -> None:
        mujoco.mj_step(sim.model, sim.data, nstep=ticks * sim.config.substeps)

    return run


def sim_ticks(sim: ArmSim) -> Callable[[int], None]:
    """Random joint targets, each held for a second."""
    sim.reset(np.zeros(sim.n_joints), np.array([0.2, 0.0, 0.1]))
    rng = np.random.default_rng(0)
    commands = rng.uniform(sim.command_low, sim.command_high, size=(64, sim.n_joints))

    def run(ticks: int) -> None:
        for t in range(ticks):
            sim.step(commands[(t // 20) % len(commands)])

    return run


def env_steps(**overrides) -> Callable[[int], None]:
    env = gym.make(ENV_ID, **overrides)
    env.reset(seed=0)
    actions = np.random.default_rng(0).uniform(-1, 1, size=(1024, 5)).astype(np.float32)

    def run(ticks: int) -> None:
        for t in range(ticks):
            *_, terminated, truncated, _ = env.step(actions[t % len(actions)])
            if terminated or truncated:
                env.reset()

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ticks", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    sim = ArmSim()
    substeps, dt = sim.config.substeps, sim.control_dt
    rows = [
        ("mj_step only (no servo model)", raw_physics(sim)),
        ("ArmSim.step (servo model, defaults)", sim_ticks(ArmSim())),
        ("ArmSim.step, latency 2, payload 0.2 kg", sim_ticks(ArmSim(SimConfig(action_latency=2, payload_mass=0.2)))),
        ("ArmReach.step (gymnasium.make)", env_steps()),
        ("ArmReach.step, no noise/deadband", env_steps(joint_position_noise=0.0, joint_velocity_noise=0.0, servo_deadband=0.0)),
    ]
    print(f"physics {1 / sim.model.opt.timestep:.0f} Hz, control {1 / dt:.0f} Hz ({substeps} physics steps per tick); "
          f"best of {args.repeats} x {args.ticks} ticks\n")
    print("| what | control ticks/s | physics steps/s | real-time factor |")
    print("|---|---:|---:|---:|")
    for name, run in rows:
        rate = best_rate(run, args.ticks, args.repeats)
        print(f"| {name} | {rate:,.0f} | {rate * substeps:,.0f} | {rate * dt:,.0f}x |")


if __name__ == "__main__":
    main()
