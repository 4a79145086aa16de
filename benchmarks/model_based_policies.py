"""Policies from the learned model on ArmReach: MPC distilled by DAgger, PPO inside the
model, and backpropagation through the model (MBRL 2.0), against MPC itself.

    .venv/bin/python benchmarks/model_based_policies.py [--seed 0] [--mbrl-episodes 6]
        [--dagger-iterations 20] [--relabelled-goals 1] [--hindsight-goals 2]
        [--expert-population 200] [--expert-elites 20] [--expert-iterations 3]
        [--search-iterations 10] [--json PATH]

1. ``train_mbrl`` (ensemble, CEM; the default configuration) learns a model and its MPC
   controller from ``--mbrl-episodes`` episodes; MPC is then evaluated on 10 fixed targets.
2. DAgger distils that controller into an MLP policy (2 episodes per iteration, every
   visited state labelled, and labelled again for ``--relabelled-goals`` targets from the
   task and ``--hindsight-goals`` places the episode reached). The labels come from the same
   model planned with a larger CEM budget (``--expert-*``, its own row): its labels are less
   noisy, and labelling costs compute offline, not on the arm. The policy gets the goal
   difference and direction (``relative_goal``). Seed 0, 16 000 labels: 100 % success,
   return -3.68 (MPC -4.10), 116 µs per action as deployed against MPC's 30 ms (263x;
   through torch, its own row, 522 µs: 58x). Same controller, 16 000 labels, without the direction: 80 %
   (expert 200x3), 70 % (the deployed CEM as expert); without either: 10 %.
3. ``train_policy_in_model`` with PPO and with backprop, from one random episode, one real
   episode per iteration.

Reported: success rate and mean return on the evaluation targets, the real environment steps
each used, and the compute per action (median over the evaluation steps, 1 thread): MPC's
``act`` and the policies as ``policy_controller`` runs them (:class:`DeployedPolicy`, numpy).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def evaluate_controller(act, env, reset=None, episodes=10, seed=10_000_019) -> dict:
    """Success rate, mean return and median seconds per action of ``act`` on fixed targets."""
    successes, returns, seconds = [], [], []
    for k in range(episodes):
        obs, _ = env.reset(seed=seed + k)
        if reset is not None:
            reset()
        total, done, info = 0.0, False, {}
        while not done:
            start = time.perf_counter()
            action = act(obs)
            seconds.append(time.perf_counter() - start)
            obs, reward, terminated, truncated, info = env.step(np.asarray(action, dtype=np.float32))
            total, done = total + float(reward), terminated or truncated
        successes.append(bool(info["success"]))
        returns.append(total)
    return {"success_rate": float(np.mean(successes)), "mean_return": float(np.mean(returns)),
            "seconds_per_action": float(np.median(seconds))}


def show(rows: dict, name: str) -> None:
    """One finished row, at once (the whole run takes long)."""
    row = rows[name]
    print(f"{name}: success {row['success_rate']:.0%}, mean return {row['mean_return']:.2f}, "
          f"{row['env_steps']} env steps, {row['seconds_per_action'] * 1e6:.0f} µs per action", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mbrl-episodes", type=int, default=6)
    parser.add_argument("--dagger-iterations", type=int, default=20)
    parser.add_argument("--relabelled-goals", type=int, default=1)
    parser.add_argument("--hindsight-goals", type=int, default=2)
    parser.add_argument("--expert-population", type=int, default=200, help="CEM samples per iteration of the labelling expert")
    parser.add_argument("--expert-elites", type=int, default=20)
    parser.add_argument("--expert-iterations", type=int, default=3)
    parser.add_argument("--search-iterations", type=int, default=10)
    parser.add_argument("--skip", nargs="*", default=[], choices=["dagger", "ppo", "backprop"],
                        help="leave these out (each takes 10-30 minutes)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import copy

    import gymnasium as gym
    import torch

    from mbrl_control import ENV_ID, train_mbrl
    from mbrl_control.loops.policy_search import train_policy_in_model
    from mbrl_control.policies.deployed import DeployedPolicy
    from mbrl_control.policies.imitation import dagger

    torch.set_num_threads(1)
    env = gym.make(ENV_ID)
    rows = {}
    mbrl = train_mbrl(ENV_ID, episodes=args.mbrl_episodes, seed=args.seed, progress=True)
    controller = mbrl.controller
    rows["MPC (ensemble + CEM)"] = {**evaluate_controller(controller.act, env, controller.reset), "env_steps": len(mbrl.dataset)}

    show(rows, "MPC (ensemble + CEM)")
    if "dagger" not in args.skip:
        expert = copy.deepcopy(controller)  # the same model; more planning per label
        budget = {"population": args.expert_population, "elites": args.expert_elites, "iterations": args.expert_iterations}
        expert.configure(expert.config, budget)
        name = f"MPC expert (CEM {args.expert_population}x{args.expert_iterations})"
        rows[name] = {**evaluate_controller(expert.act, env, expert.reset), "env_steps": len(mbrl.dataset)}
        show(rows, name)
        distilled = dagger(env, expert.act, iterations=args.dagger_iterations, episodes_per_iteration=2,
                           reset_expert=expert.reset, relabelled_goals=args.relabelled_goals,
                           hindsight_goals=args.hindsight_goals, seed=args.seed,
                           hidden=256, activation="relu", relative_goal=env.unwrapped.goal_dims, progress=True)
        rows["DAgger policy (MPC expert)"] = {**evaluate_controller(DeployedPolicy(distilled.policy).act, env),
                                              "env_steps": len(mbrl.dataset) + distilled.env_steps,
                                              "labels": len(distilled.obs),
                                              "curve": [(it.labels, it.success_rate) for it in distilled.iterations]}
        show(rows, "DAgger policy (MPC expert)")
        # the same policy through torch (GaussianPolicy.act): what the numpy snapshot saves
        rows["DAgger policy, torch forward"] = {**evaluate_controller(distilled.policy.act, env),
                                                "env_steps": rows["DAgger policy (MPC expert)"]["env_steps"]}
        show(rows, "DAgger policy, torch forward")

    for name, method, settings in (("PPO inside the model", "ppo", {}),
                                   ("backprop through the model", "backprop", {"learning_rate": 3e-3, "squash": True})):
        if method in args.skip:
            continue
        search = train_policy_in_model(env, method="backprop" if method == "backprop" else "policy_gradient",
                                       iterations=args.search_iterations, seed=args.seed, progress=True,
                                       hidden=256, activation="relu", **settings)
        rows[name] = {**evaluate_controller(DeployedPolicy(search.policy).act, env), "env_steps": len(search.dataset),
                      "curve": search.curve}
        show(rows, name)

    mpc_seconds = rows["MPC (ensemble + CEM)"]["seconds_per_action"]
    print(f"\nArmReach, seed {args.seed}; 10 evaluation targets; compute per action: median, 1 thread\n")
    print(f"{'controller':30s} {'success':>8s} {'return':>8s} {'env steps':>10s} {'per action':>11s} {'vs MPC':>8s}")
    for name, row in rows.items():
        print(f"{name:30s} {row['success_rate']:8.0%} {row['mean_return']:8.2f} {row['env_steps']:10d} "
              f"{row['seconds_per_action'] * 1e6:9.0f} µs {mpc_seconds / row['seconds_per_action']:7.0f}x")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
