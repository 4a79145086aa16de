"""Policies from the learned model on ArmReach, over seeds: MPC distilled by DAgger,
backpropagation through the model (MBRL 2.0, ensemble and GP), PPO inside the model
(model-based PPO), against MPC itself; and the policy inside the planner.

    .venv/bin/python benchmarks/model_based_policies.py [--seeds 0 1 2]
        [--methods mpc dagger backprop backprop_gp ppo planner] [--json PATH] [--plot PATH]
    .venv/bin/python benchmarks/model_based_policies.py --combine s0.json s1.json s2.json [--json PATH] [--plot PATH]

``--combine`` reports the seeds of several runs' ``--json`` files as one (seeds run as
processes side by side).

Per seed, each on 2 cores (torch on 1 thread, as the nodes run):

``mpc``          ``train_mbrl`` (ensemble + CEM, the defaults) for ``--mbrl-episodes``
                 episodes; its first episode moves at random.
``dagger``       that controller's model, planned with ``--expert-*`` (the deployed CEM
                 budget, through the model's mean as ``pg_trainer``'s DAgger plans),
                 distilled by DAgger (``--dagger-iterations`` × 2 episodes; each episode's
                 states, 1 relabelled, 2 hindsight and the stay goals, labelled together along the
                 episode by :meth:`MPCController.label`); its env steps and minutes include
                 the MPC run that learned the model.
``backprop``     MBRL 2.0, ``train_policy_in_model(method="backprop")`` on an ensemble,
                 1 random episode then 1 episode per iteration (``--search-iterations``).
``backprop_gp``  the same through a GP's posterior (PILCO-style).
``ppo``          model-based PPO: ``train_policy_in_model(method="policy_gradient")``,
                 ``--ppo-iterations`` (MBPO-style short branches from real states).
``planner``      the policy inside the planner: the DAgger policy's sequence and
                 perturbations of it among CEM's samples (``proposals``), at the default
                 population and at a quarter of it, against plain CEM at both.

Reported per method (mean over seeds): success rate on ``--eval-episodes`` fixed targets
(30), env steps to 90 % success (the first evaluation during training, on 10 targets, at or
above it; seeds that got there), real env
steps used, wall-clock minutes, and compute per action as ``policy_controller`` runs a policy
(:class:`DeployedPolicy`, numpy) or ``act`` of MPC (median; p95 for the planner rows).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

METHODS = ("mpc", "dagger", "backprop", "backprop_gp", "ppo", "planner")


def evaluate_controller(act: Callable, env, reset: Callable | None = None, episodes: int = 10, seed: int = 10_000_019) -> dict:
    """Success rate, mean return and median and p95 seconds per action of ``act`` on fixed targets."""
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
            "seconds_per_action": float(np.median(seconds)), "p95_seconds": float(np.percentile(seconds, 95))}


def steps_to(curve: list[tuple[int, float]], level: float = 0.9) -> int | None:
    """The env steps of the first point of ``curve`` [(env steps, success)] at or above ``level``."""
    return next((steps for steps, success in curve if success is not None and success >= level), None)


class Seed:
    """One seed's runs; the MPC run (and its model) is shared by DAgger and the planner rows."""

    def __init__(self, seed: int, args: argparse.Namespace) -> None:
        import gymnasium as gym

        from mbrl_control import ENV_ID

        self.seed, self.args, self.env_id = seed, args, ENV_ID
        self.env = gym.make(ENV_ID)
        self._mbrl: tuple[Any, float] | None = None
        self._dagger: Any = None

    def score(self, act: Callable, reset: Callable | None = None) -> dict:
        """:func:`evaluate_controller` on the ``--eval-episodes`` fixed targets."""
        return evaluate_controller(act, self.env, reset, self.args.eval_episodes)

    def mbrl(self) -> tuple[Any, float]:
        if self._mbrl is None:
            from mbrl_control import train_mbrl

            start = time.perf_counter()
            result = train_mbrl(self.env_id, episodes=self.args.mbrl_episodes, seed=self.seed, progress=True)
            self._mbrl = result, time.perf_counter() - start
        return self._mbrl

    def mpc(self) -> dict:
        mbrl, seconds = self.mbrl()
        controller = mbrl.controller
        steps = np.cumsum(mbrl.episode_lengths)
        # the training episodes' own outcome: the steps before the run of successes that lasts to the end
        last_failure = max((k for k, success in enumerate(mbrl.successes) if not success), default=-1)
        reached = int(steps[last_failure]) if last_failure < len(steps) - 1 else None
        curve = [(int(n), float(s)) for n, s in zip(steps, mbrl.successes)]
        return {**self.score(controller.act, controller.reset), "env_steps": len(mbrl.dataset),
                "steps_to_90": reached if last_failure >= 0 else 0, "minutes": seconds / 60, "curve": curve}

    def dagger(self) -> dict:
        from mbrl_control.policies.deployed import DeployedPolicy
        from mbrl_control.policies.imitation import dagger

        mbrl, mbrl_seconds = self.mbrl()
        args = self.args
        expert = copy.deepcopy(mbrl.controller)  # the same model; its own budget, propagation and proposals
        expert.configure(expert.config.replace(proposals=args.expert_proposals, propagation=args.expert_propagation),
                         {"population": args.expert_population, "elites": args.expert_elites, "iterations": args.expert_iterations})
        distilled = dagger(self.env, expert.act, iterations=args.dagger_iterations, episodes_per_iteration=2,
                           reset_expert=expert.reset, label=expert.label, relabelled_goals=1, hindsight_goals=2, stay_goals=True,
                           seed=self.seed, policy_to_expert=expert.set_policy, progress=True)
        self._dagger = distilled
        before = len(mbrl.dataset)
        curve = [(before + it.env_steps, it.success_rate) for it in distilled.iterations]
        seconds = [mbrl_seconds + it.seconds for it in distilled.iterations]
        reached = steps_to(curve, 0.95)
        return {**self.score(DeployedPolicy(distilled.policy).act), "env_steps": before + distilled.env_steps,
                "steps_to_90": steps_to(curve), "labels": len(distilled.obs), "minutes": seconds[-1] / 60,
                "minutes_to_95": None if reached is None else seconds[[n for n, _ in curve].index(reached)] / 60,
                "expert_minutes": sum(it.expert_seconds for it in distilled.iterations) / 60, "curve": curve}

    def search(self, method: str, model: str, iterations: int) -> dict:
        from mbrl_control.loops.policy_search import train_policy_in_model
        from mbrl_control.policies.deployed import DeployedPolicy

        start = time.perf_counter()
        result = train_policy_in_model(self.env, method=method, model=model, iterations=iterations, seed=self.seed, progress=True)
        curve = [(steps, success) for steps, _, success in result.curve]
        return {**self.score(DeployedPolicy(result.policy).act), "env_steps": len(result.dataset),
                "steps_to_90": steps_to(curve), "minutes": (time.perf_counter() - start) / 60, "curve": curve}

    def backprop(self) -> dict:
        return self.search("backprop", "ensemble", self.args.search_iterations)

    def backprop_gp(self) -> dict:
        return self.search("backprop", "gp", self.args.search_iterations)

    def ppo(self) -> dict:
        return self.search("policy_gradient", "ensemble", self.args.ppo_iterations)

    def planner(self) -> dict[str, dict]:
        """Plain CEM and CEM with the DAgger policy's proposals, at the default population
        and at a quarter of it."""
        from mbrl_control.planning.optimizers import OPTIMIZERS

        if self._dagger is None:
            self.dagger()
        mbrl, _ = self.mbrl()
        defaults = OPTIMIZERS[mbrl.controller.config.optimizer].Config()
        rows = {}
        for fraction in (1, 4):
            budget = {"population": defaults.population // fraction, "elites": max(1, defaults.elites // fraction)}
            for proposals in (0, self.args.proposals):
                controller = copy.deepcopy(mbrl.controller)
                controller.configure(controller.config.replace(proposals=proposals), budget)
                controller.set_policy(self._dagger.policy if proposals else None)
                name = f"CEM {budget['population']}" + (f" + policy ({proposals})" if proposals else "")
                rows[name] = self.score(controller.act, controller.reset)
        return rows


def summarise(runs: list[dict]) -> dict:
    """Mean success and minutes, the seeds that reached 90 % and their median env steps."""
    reached = [r["steps_to_90"] for r in runs if r.get("steps_to_90") is not None]
    row = {"seeds": len(runs), "success_rate": float(np.mean([r["success_rate"] for r in runs])),
           "success_min": float(np.min([r["success_rate"] for r in runs])),
           "mean_return": float(np.mean([r["mean_return"] for r in runs])),
           "env_steps": int(np.mean([r.get("env_steps", 0) for r in runs])),
           "reached_90": len(reached) if any("steps_to_90" in r for r in runs) else None,  # None: not a learner (planner rows)
           "steps_to_90": float(np.median(reached)) if reached else None,
           "seconds_per_action": float(np.median([r["seconds_per_action"] for r in runs])),
           "p95_seconds": float(np.median([r["p95_seconds"] for r in runs]))}
    if all("minutes" in r for r in runs):
        row["minutes"] = float(np.mean([r["minutes"] for r in runs]))
    hit = [r["minutes_to_95"] for r in runs if r.get("minutes_to_95") is not None]
    if any("minutes_to_95" in r for r in runs):
        row["minutes_to_95"] = float(np.mean(hit)) if len(hit) == len(runs) else None
    return row


def show(name: str, row: dict) -> None:
    print(f"{name}: success {row['success_rate']:.0%}, mean return {row['mean_return']:.2f}, "
          f"{row.get('env_steps', '-')} env steps, {row['seconds_per_action'] * 1e6:.0f} µs per action"
          + (f", {row['minutes']:.1f} min" if "minutes" in row else ""), flush=True)


def table(summary: dict[str, dict], reference: str | None) -> None:
    mpc = summary[reference]["seconds_per_action"] if reference in summary else None
    print(f"\n{'method':28s} {'success':>8s} {'worst':>6s} {'return':>7s} {'to 90 %':>12s} {'env steps':>9s} "
          f"{'minutes':>8s} {'per action':>11s} {'p95':>9s} {'vs MPC':>7s}")
    for name, row in summary.items():
        to90 = ("" if row["reached_90"] is None else f"- (0/{row['seeds']})" if row["steps_to_90"] is None
                else f"{row['steps_to_90']:.0f} ({row['reached_90']}/{row['seeds']})")
        minutes = f"{row['minutes']:8.1f}" if "minutes" in row else f"{'':8s}"
        ratio = f"{mpc / row['seconds_per_action']:6.0f}x" if mpc else ""
        steps = f"{row['env_steps']:9d}" if row["env_steps"] else f"{'':9s}"
        print(f"{name:28s} {row['success_rate']:8.0%} {row['success_min']:6.0%} {row['mean_return']:7.2f} {to90:>12s} "
              f"{steps} {minutes} {row['seconds_per_action'] * 1e3:8.2f} ms {row['p95_seconds'] * 1e3:6.1f} ms {ratio}")


def plot(path: Path, runs: dict[str, list[dict]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, seeds in runs.items():
        curves = [r["curve"] for r in seeds if r.get("curve")]
        if not curves:
            continue
        length = min(len(c) for c in curves)
        steps = np.mean([[n for n, _ in c[:length]] for c in curves], axis=0)
        success = np.mean([[s or 0.0 for _, s in c[:length]] for c in curves], axis=0)
        ax.plot(steps, success, "o-", ms=3, label=name)
    ax.axhline(0.9, color="grey", lw=0.5, ls="--")
    ax.set_xlabel("real env steps")
    ax.set_ylabel(f"success rate (mean of {max(len(s) for s in runs.values())} seeds)")
    ax.set_title("ArmReach: policies from the learned model")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)


NAMES = {"mpc": "MPC (ensemble + CEM)", "dagger": "DAgger (MPC expert)", "backprop": "MBRL 2.0 (ensemble)",
         "backprop_gp": "MBRL 2.0 (GP)", "ppo": "model-based PPO"}


def main() -> int:
    from mbrl_control.loops.policy_methods import POLICY_METHODS
    from mbrl_control.planning.propagation import PROPAGATIONS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--mbrl-episodes", type=int, default=6)
    parser.add_argument("--dagger-iterations", type=int, default=20)
    parser.add_argument("--expert-population", type=int, default=64, help="CEM samples per iteration of the labelling expert")
    parser.add_argument("--expert-elites", type=int, default=8)
    parser.add_argument("--expert-iterations", type=int, default=2)
    parser.add_argument("--expert-propagation", choices=PROPAGATIONS, default=POLICY_METHODS["dagger"].expert_settings["propagation"],
                        help="how the labelling expert's plans use the model (pg_trainer's DAgger's default)")
    parser.add_argument("--expert-proposals", type=int, default=0, help="the last round's policy's sequences among the expert's samples (0, as pg_trainer's planner)")
    parser.add_argument("--search-iterations", type=int, default=9, help="MBRL 2.0: 1 random + this many episodes")
    parser.add_argument("--ppo-iterations", type=int, default=19, help="model-based PPO: 1 random + this many episodes")
    parser.add_argument("--eval-episodes", type=int, default=30, help="fixed targets each method's final policy or controller is scored on")
    parser.add_argument("--proposals", type=int, default=4, help="policy sequences among CEM's samples (planner rows)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--combine", type=Path, nargs="+", help="report the runs in these --json files together instead of running")
    args = parser.parse_args()

    runs: dict[str, list[dict]] = {}
    if args.combine:
        seeds = []
        for path in args.combine:
            found = json.loads(path.read_text())
            seeds += found.get("seeds", [])
            for name, rows in found["runs"].items():
                runs.setdefault(name, []).extend(rows)
    else:
        import torch

        torch.set_num_threads(1)
        seeds = args.seeds
        for seed in seeds:
            one = Seed(seed, args)
            for method in args.methods:
                found = getattr(one, method)()
                for name, row in ({f"planner: {k}": v for k, v in found.items()} if method == "planner" else {NAMES[method]: found}).items():
                    runs.setdefault(name, []).append(row)
                    show(f"seed {seed}, {name}", row)
    summary = {name: summarise(rows) for name, rows in runs.items()}
    print(f"\nArmReach, seeds {seeds}; {args.eval_episodes} evaluation targets; success: mean over seeds (worst seed); "
          "to 90 %: median env steps of the seeds that got there; compute per action: median, 1 thread")
    table(summary, NAMES["mpc"])
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"seeds": seeds, "summary": summary, "runs": runs}, indent=2))
    if args.plot:
        plot(args.plot, {name: rows for name, rows in runs.items() if not name.startswith("planner")})
    return 0


if __name__ == "__main__":
    sys.exit(main())
