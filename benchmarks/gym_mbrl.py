"""Model-based RL on standard tasks and on the arm as a real one behaves, side by side with
mbrl-lib's PETS: return per episode, planning time per step, model-fit time.

    .venv/bin/python benchmarks/gym_mbrl.py [--tasks Pusher-v5 ...] [--methods ours pets]
        [--seeds 3] [--pets-seeds N] [--workers 2] [--episodes N] [--pets-episodes N] [--set NAME=VALUE ...]
        [--runs DIR] [--json PATH] [--plot PATH]

Every run learns from scratch: one episode of random actions, then MPC through the model
refitted after each episode, with the task's reward and termination from
:mod:`mbrl_control.tasks` (PETS gets the same functions, so both plan on the same
objective). ``ours`` is :func:`mbrl_control.train_mbrl` at its defaults (``--set`` tries
other settings); ``pets`` is mbrl-lib 0.2.0's PETS at its published configuration for the
task (``PETS_OVERRIDES``: the probabilistic ensemble of 7 members with 5 elites, CEM at 350
samples × 5 iterations, 20 particles, TS∞), built from its own components (model,
trainer, ``ModelEnv``, agent), each planning step timed. Install it with ``make
bench-peers`` (``mbrl==0.2.0`` and the hydra/omegaconf it needs, over this venv with
``--no-deps``); without it the PETS columns say so.

PETS plans for about 1.5-3 s per step on this 2-core machine: where a task's budget would
take hours, it runs only the first ``pets_episodes`` of the task's episodes
(``--pets-episodes`` changes that), and the table compares both at that many episodes as
well as ours over the full budget. Both explore with one episode of random actions (PETS's
own script explores for ``trial_length`` steps, the same for every task here but the double
pendulum, whose random episodes end within ~20 steps) and PETS then trains as its script
does: every ``freq_train_model`` planned steps, at least once per episode.

Per task and method: return per episode (mean ± std over seeds), the mean of the last 5
episodes and of episodes 6-10 (returns must not fall as data grow), ArmReach's success rate
by episode, planning ms per step (median and p95 over all steps), model-fit seconds per
episode, and the ratios to PETS. Every run's numbers are cached in ``--runs`` (one JSON per
task, method and seed), so an interrupted benchmark resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ARM = "mbrl_control/ArmReach-v0"


@dataclass(frozen=True)
class Benchmark:
    """One row of the benchmark: an env (id and settings), the episodes it runs, and the
    PETS configuration closest to it in mbrl-lib's published ones."""

    env_id: str
    episodes: int
    pets_override: str
    pets_episodes: int
    env_kwargs: dict = field(default_factory=dict)
    note: str = ""


BENCHMARKS = {
    "Pusher-v5": Benchmark("Pusher-v5", 40, "pets_pusher", 6, note="100 steps per episode"),
    "InvertedDoublePendulum-v5": Benchmark("InvertedDoublePendulum-v5", 20, "pets_inv_pendulum", 4,
                                           note="up to 1000 steps per episode; PETS's inverted-pendulum configuration "
                                                "(measured: PETS stops at its first plan, its model's samples NaN over the "
                                                "45-step horizon, after one random episode or 200 random steps)"),
    "HalfCheetah-v5": Benchmark("HalfCheetah-v5", 10, "pets_halfcheetah", 3, note="1000 steps per episode"),
    "ArmReach-v0": Benchmark(ARM, 15, "pets_reacher", 6, note="100 steps per episode; PETS's reacher configuration"),
    "ArmReach-v0 real": Benchmark(ARM, 15, "pets_reacher", 6, {"action_latency": 2, "payload_mass": 0.2, "servo_deadband": 0.01},
                                  note="servos two ticks late, 0.2 kg payload, 0.01 rad deadband"),
}


def make(benchmark: Benchmark):
    from mbrl_control.tasks import make_env, task_for

    env = make_env(benchmark.env_id, **benchmark.env_kwargs)
    return env, task_for(env)


def run_ours(name: str, seed: int, episodes: int, settings: dict) -> dict:
    import torch

    from mbrl_control import train_mbrl

    torch.set_num_threads(1)
    env, _ = make(BENCHMARKS[name])
    start = time.perf_counter()
    result = train_mbrl(env, episodes=episodes, seed=seed, **settings)
    return {"returns": result.episode_returns, "lengths": result.episode_lengths,
            "success": [None if s is None else bool(s) for s in result.successes], "final_distance": result.final_distances,
            "planning_s": result.controller.planning_times, "fit_s": [e.fit_seconds for e in result.episodes],
            "seconds": time.perf_counter() - start}


# mbrl-lib's examples/conf/action_optimizer/cem.yaml, which the 0.2.0 wheel leaves out
CEM_OPTIMIZER = {
    "_target_": "mbrl.planning.CEMOptimizer", "num_iterations": "${overrides.cem_num_iters}",
    "elite_ratio": "${overrides.cem_elite_ratio}", "population_size": "${overrides.cem_population_size}",
    "alpha": "${overrides.cem_alpha}", "lower_bound": "???", "upper_bound": "???", "return_mean_elites": True,
    "device": "${device}", "clipped_normal": "${overrides.cem_clipped_normal}",
}


def pets_config(override: str, seed: int, steps: int, trial_length: int):
    """mbrl-lib's PETS configuration (its algorithm, dynamics-model, optimiser and task
    files, as its hydra entry point composes them) for ``steps`` env steps on the CPU."""
    import omegaconf

    import mbrl

    conf = Path(mbrl.__file__).parent / "examples" / "conf"
    load = lambda part: omegaconf.OmegaConf.load(conf / part)  # noqa: E731
    optimizer = load("action_optimizer/cem.yaml") if (conf / "action_optimizer" / "cem.yaml").exists() else CEM_OPTIMIZER
    cfg = omegaconf.OmegaConf.create({
        "seed": seed, "device": "cpu", "debug_mode": False,
        "algorithm": load("algorithm/pets.yaml"), "dynamics_model": load("dynamics_model/gaussian_mlp_ensemble.yaml"),
        "overrides": load(f"overrides/{override}.yaml"), "action_optimizer": optimizer,
    })
    cfg.overrides.num_steps, cfg.overrides.trial_length = steps, trial_length
    cfg.overrides.learned_rewards = False  # both plan on the task's own reward
    # its task files' observation processing and no-delta entries index its own envs' observations
    cfg.overrides.obs_process_fn, cfg.overrides.no_delta_list = None, []
    cfg.overrides.freq_train_model = min(cfg.overrides.freq_train_model, trial_length)  # at least once per episode
    # hydra would turn activation_fn_cfg into an object before GaussianMLP reads it (mbrl-lib PR #187)
    cfg.algorithm.agent["_recursive_"] = False
    cfg.dynamics_model["_recursive_"] = False
    omegaconf.OmegaConf.resolve(cfg)
    return cfg


def run_pets(name: str, seed: int, episodes: int, settings: dict) -> dict:
    """mbrl-lib's PETS loop (``mbrl.algorithms.pets.train``), step by step, timed."""
    import torch

    import mbrl.models
    import mbrl.planning
    import mbrl.util.common

    torch.set_num_threads(1)
    benchmark = BENCHMARKS[name]
    env, task = make(benchmark)
    trial_length = env.spec.max_episode_steps or env.unwrapped.config.episode_length  # ArmReach truncates by itself
    cfg = pets_config(benchmark.pets_override, seed, episodes * trial_length, trial_length)
    if task.free_dims:  # as PETS's own HalfCheetah drops the x position from the model's inputs
        cfg.overrides.obs_process_fn = f"gym_mbrl.drop_{task.free_dims}"
        cfg.dynamics_model.in_size = env.observation_space.shape[0] - task.free_dims + env.action_space.shape[0]
    env.reset(seed=seed)
    env.action_space.seed(seed)
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    obs_shape, act_shape = env.observation_space.shape, env.action_space.shape
    model = mbrl.util.common.create_one_dim_tr_model(cfg, obs_shape, act_shape)
    buffer = mbrl.util.common.create_replay_buffer(cfg, obs_shape, act_shape, rng=rng)

    def reward_fn(obs):
        return lambda act, next_obs: task.reward(obs, act, next_obs).unsqueeze(-1)

    def termination_fn(act, next_obs):
        return torch.zeros(len(next_obs), 1, dtype=torch.bool)

    class ModelEnv(mbrl.models.ModelEnv):
        """mbrl-lib's ModelEnv with the task's reward of (obs, act, next_obs) and termination."""

        def step(self, actions, model_state, sample=False):
            self.reward_fn = reward_fn(model_state["obs"])
            if task.terminates:
                obs = model_state["obs"]
                self.termination_fn = lambda act, next_obs: task.termination(obs, act, next_obs).unsqueeze(-1)
            return super().step(actions, model_state, sample)

    model_env = ModelEnv(env, model, termination_fn, None, generator=generator)
    trainer = mbrl.models.ModelTrainer(model, optim_lr=cfg.overrides.model_lr, weight_decay=cfg.overrides.model_wd)
    agent = mbrl.planning.create_trajectory_optim_agent_for_model(model_env, cfg.algorithm.agent, num_particles=cfg.algorithm.num_particles)
    returns, lengths, planning, fits, successes, distances = [], [], [], [], [], []
    start = time.perf_counter()
    planned = 0  # env steps since the exploration, the counter PETS trains its model by
    for episode in range(episodes):
        obs, _ = env.reset()
        agent.reset()
        done, total, length, fit = False, 0.0, 0, 0.0
        while not done:
            if episode > 0 and planned % cfg.algorithm.freq_train_model == 0:
                tic = time.perf_counter()
                mbrl.util.common.train_model_and_save_model_and_data(model, trainer, cfg.overrides, buffer)
                fit += time.perf_counter() - tic
            if episode == 0:  # exploration: one episode of random actions, as ours (PETS: trial_length steps)
                action = env.action_space.sample()
            else:
                tic = time.perf_counter()
                action = agent.act(obs)
                planning.append(time.perf_counter() - tic)
                planned += 1
            next_obs, reward, terminated, truncated, info = env.step(action)
            buffer.add(obs, action, next_obs, reward, terminated, truncated)
            obs, total, length = next_obs, total + float(reward), length + 1
            done = terminated or truncated
        returns.append(total)
        lengths.append(length)
        fits.append(fit)
        successes.append(bool(info["success"]) if "success" in info else None)
        distances.append(float(info["distance"]) if "distance" in info else None)
        print(f"[pets {name} seed {seed}] episode {episode}: return {total:.1f} ({length} steps, "
              f"{np.median(planning[-length:]) if episode else 0:.2f} s per step)", file=sys.stderr, flush=True)
    return {"returns": returns, "lengths": lengths, "success": successes, "final_distance": distances,
            "planning_s": planning, "fit_s": fits, "seconds": time.perf_counter() - start}


def drop_1(obs):
    """The observation without its first entry (a runner's x position), as PETS's model input."""
    return obs[..., 1:]


def drop_2(obs):
    return obs[..., 2:]


RUNNERS = {"ours": run_ours, "pets": run_pets}


def job(args: tuple) -> dict:
    name, method, seed, episodes, settings, cache = args
    path = Path(cache) / f"{name.replace(' ', '_').replace('/', '_')}.{method}.{seed}.{episodes}.json"
    if path.exists():
        return json.loads(path.read_text())
    result = {"task": name, "method": method, "seed": seed, "settings": settings,
              **RUNNERS[method](name, seed, episodes, settings)}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result))
    return result


def pets_available() -> str | None:
    """None, or why mbrl-lib cannot run here."""
    try:
        import hydra  # noqa: F401
        import mbrl.algorithms.pets  # noqa: F401
    except Exception as err:  # ImportError, or its pinned dependencies at other versions
        return f"mbrl-lib not importable ({type(err).__name__}: {err}); make bench-peers installs it"
    return None


def summarise(runs: list[dict], episodes: int) -> dict:
    """Mean ± std over seeds of the first ``episodes`` returns, and the timing figures."""
    returns = np.array([r["returns"][:episodes] for r in runs], dtype=float)  # [seeds, episodes]
    planning = np.concatenate([r["planning_s"] for r in runs]) * 1e3
    successes = [r["success"][:episodes] for r in runs if r["success"] and r["success"][-1] is not None]
    last5 = returns[:, -5:].mean(1)
    middle = returns[:, 5:10].mean(1) if episodes >= 10 else np.full(len(runs), math.nan)
    return {
        "episodes": episodes, "seeds": len(runs),
        "return_mean": returns.mean(0).tolist(), "return_std": returns.std(0).tolist(),
        "last5": float(last5.mean()), "last5_std": float(last5.std()), "episodes_6_10": float(middle.mean()),
        "best": float(returns.max(1).mean()),
        "plan_ms_median": float(np.median(planning)) if len(planning) else math.nan,
        "plan_ms_p95": float(np.percentile(planning, 95)) if len(planning) else math.nan,
        "fit_s_per_episode": float(np.mean([np.mean(r["fit_s"][:episodes]) for r in runs])),
        "success": np.mean(np.array(successes, dtype=float), 0).tolist() if successes else None,
    }


def plot(table: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(table)
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.4), squeeze=False)
    for ax, name in zip(axes[0], names):
        for method, row in table[name].items():
            if row is None or "return_mean" not in row:
                continue
            mean, std = np.array(row["return_mean"]), np.array(row["return_std"])
            episodes = np.arange(len(mean))
            ax.plot(episodes, mean, "o-", ms=3, label=f"{method} ({row['plan_ms_median']:.0f} ms/step)")
            ax.fill_between(episodes, mean - std, mean + std, alpha=0.2)
        ax.set(title=name, xlabel="episode (0 = random)", ylabel="return")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", default=list(BENCHMARKS), choices=list(BENCHMARKS))
    parser.add_argument("--methods", nargs="+", default=list(RUNNERS), choices=list(RUNNERS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--pets-seeds", type=int, default=None, help="PETS's seeds (default: --seeds; it plans ~50x slower)")
    parser.add_argument("--workers", type=int, default=2, help="runs at a time, one torch thread each")
    parser.add_argument("--episodes", type=int, default=None, help="episodes per run for every task (default: each task's budget)")
    parser.add_argument("--pets-episodes", type=int, default=None, help="PETS's episodes per run (default: each task's, see BENCHMARKS)")
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE", help="settings of ours (train_mbrl keywords)")
    parser.add_argument("--runs", type=Path, default=Path("benchmarks/results/gym_mbrl_runs"), help="cache of finished runs")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--plot", type=Path, default=Path("benchmarks/results/gym_mbrl.png"))
    args = parser.parse_args()
    from mbrl_control.cli import parse_settings

    settings = parse_settings(args.set)
    missing = pets_available() if "pets" in args.methods else None
    methods = [m for m in args.methods if m != "pets" or missing is None]
    if missing:
        print(f"PETS columns left out: {missing}", file=sys.stderr)

    def budget(name: str, method: str) -> int:
        benchmark = BENCHMARKS[name]
        if method == "pets":
            return args.pets_episodes or min(benchmark.pets_episodes, args.episodes or benchmark.episodes)
        return args.episodes or benchmark.episodes

    seeds = {"ours": args.seeds, "pets": args.pets_seeds or args.seeds}
    jobs = [(name, method, seed, budget(name, method), settings if method == "ours" else {}, str(args.runs))
            for name in args.tasks for method in methods for seed in range(seeds[method])]
    from tqdm import tqdm

    runs = []
    with ProcessPoolExecutor(args.workers) as pool, tqdm(total=len(jobs), unit="run", file=sys.stderr) as bar:
        for result in pool.map(job, jobs):
            runs.append(result)
            bar.update()
            bar.set_postfix(task=result["task"], method=result["method"], last=f"{result['returns'][-1]:.1f}")

    table: dict[str, dict] = {}
    for name in args.tasks:
        table[name] = {}
        for method in methods:
            mine = [r for r in runs if r["task"] == name and r["method"] == method]
            table[name][method] = summarise(mine, budget(name, method))
        if "pets" in methods:  # ours at the env steps PETS had
            table[name]["ours @ PETS episodes"] = summarise([r for r in runs if r["task"] == name and r["method"] == "ours"],
                                                            budget(name, "pets"))

    print(f"\nseeds: {', '.join(f'{m} {seeds[m]}' for m in methods)}; episode 0 is random actions; ours: train_mbrl defaults"
          + (f" with {settings}" if settings else "") + "; PETS: mbrl-lib 0.2.0 at its published configuration\n")
    print("| task | method | seeds | episodes | last-5 mean return | episodes 6-10 | best episode | plan ms median (p95) | fit s/episode | vs PETS |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for name, rows in table.items():
        pets = rows.get("pets")
        for method, row in rows.items():
            versus = ""
            if pets is not None and method == "ours @ PETS episodes":
                versus = (f"return {row['last5']:.1f} vs {pets['last5']:.1f}; "
                          f"planning {pets['plan_ms_median'] / row['plan_ms_median']:.0f}x faster")
            print(f"| {name} | {method} | {row['seeds']} | {row['episodes']} | {row['last5']:.1f} ± {row['last5_std']:.1f} | "
                  f"{row['episodes_6_10']:.1f} | {row['best']:.1f} | {row['plan_ms_median']:.0f} ({row['plan_ms_p95']:.0f}) | "
                  f"{row['fit_s_per_episode']:.1f} | {versus} |")
    for name, rows in table.items():
        for method, row in rows.items():
            print(f"\n{name}, {method}: return per episode (mean ± std): "
                  + ", ".join(f"{m:.1f}±{s:.1f}" for m, s in zip(row["return_mean"], row["return_std"])))
            if row["success"]:
                print(f"  success rate per episode: " + " ".join(f"{v:.0%}" for v in row["success"]))
    plot(table, args.plot)
    print(f"\nplot: {args.plot}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"table": table, "runs": runs, "settings": settings,
                                         "pets": missing or "mbrl 0.2.0"}, indent=2))
        print(f"numbers: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
