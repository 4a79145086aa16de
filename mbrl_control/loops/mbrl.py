"""The model-based RL loop (seed 000, "MBRL versions"; PETS in seed 004).

    0.5  random data → fit the model once → plan with MPC; the model never sees the
         states its plans lead to.
    1.0  as 0.5, but plans run open loop for ``horizon`` steps (replan only when the plan
         is used up), and the data of every episode are aggregated and the model refitted.
    1.5  MPC: replan at every step from the measured state, aggregate data and refit once
         ``retrain_every`` new steps have come and the data have grown by ``retrain_growth``
         since the last fit (or after each episode, ``retrain_every=0``).

Each run starts with ``seed_episodes`` episodes of uniformly random actions. Any
gymnasium ``Env`` with Box spaces works; the planner needs the task's batched torch
``reward_fn(obs, act, next_obs) -> [B]`` (and optionally ``termination_fn``).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Any, Callable

import gymnasium as gym
import numpy as np
import torch

from mbrl_control.config import Config, ConfigError, param, split_overrides
from mbrl_control.data.transitions import TransitionDataset
from mbrl_control.models import REGRESSORS, DynamicsModel, FitReport, make_model
from mbrl_control.planning.mpc import MPCConfig, MPCController
from mbrl_control.planning.optimizers import OPTIMIZERS
from mbrl_control.planning.propagation import RewardFn, TerminationFn
from mbrl_control.tasks import env_id, make_env, model_layout, task_for

VERSIONS = ("0.5", "1.0", "1.5")


@dataclass(frozen=True)
class MBRLConfig(Config):
    """Settings of the loop itself (the model, MPC and optimiser have their own)."""

    version: str = param("1.5", "MBRL version: 0.5 fit once, 1.0 open-loop plans + refit per episode, 1.5 MPC.", choices=VERSIONS)
    retrain_every: int = param(50, "Refit once at least this many env steps have come since the last fit (version 1.5); 0 = after each episode.", low=0)
    retrain_growth: float = param(0.25, "...and once the data have grown by this fraction since the last fit: refits every ~retrain_every steps while data are few, ever rarer as they grow.", low=0.0, high=10.0)


@dataclass
class Episode:
    """What happened in one episode. ``success`` and ``final_distance`` come from the
    env's ``info`` (``"success"``, ``"distance"``) where it reports them."""

    index: int
    phase: str  # "seed" (random actions) or "mpc"
    episode_return: float
    length: int
    success: bool | None
    final_distance: float | None
    planning_hz: float  # 1 / mean planning time per step; nan for seed episodes
    fit_seconds: float  # time spent fitting the model after this episode's data


@dataclass
class MBRLResult:
    """Outcome of :func:`train_mbrl`: per-episode records, the data, the final model and
    controller, and every fit's report."""

    episodes: list[Episode]
    dataset: TransitionDataset
    model: DynamicsModel
    controller: MPCController
    fit_reports: list[FitReport] = field(default_factory=list)

    @property
    def episode_returns(self) -> list[float]:
        return [e.episode_return for e in self.episodes]

    @property
    def episode_lengths(self) -> list[int]:
        return [e.length for e in self.episodes]

    @property
    def successes(self) -> list[bool | None]:
        return [e.success for e in self.episodes]

    @property
    def final_distances(self) -> list[float | None]:
        return [e.final_distance for e in self.episodes]


def train_mbrl(
    env: gym.Env | str,
    reward_fn: RewardFn | None = None,
    termination_fn: TerminationFn | None = None,
    model: str = "ensemble",
    planner: str = "cem",
    episodes: int = 10,
    seed_episodes: int = 1,
    seed: int = 0,
    progress: bool = False,
    callback: Callable[[Episode], None] | None = None,
    model_overrides: dict[str, Any] | None = None,
    planner_overrides: dict[str, Any] | None = None,
    **overrides: Any,
) -> MBRLResult:
    """Learn to act in ``env`` from scratch by model-based RL.

    Args:
        env: a gymnasium ``Env`` with Box observation and action spaces, or its id (made
            by :func:`mbrl_control.tasks.make_env`, with what its task needs).
        reward_fn: batched torch ``(obs [B, o], act [B, a], next_obs [B, o]) -> [B]``; by
            default the reward of the env's registered task (:mod:`mbrl_control.tasks`:
            ArmReach and gymnasium's MuJoCo tasks), else the env's ``unwrapped.reward_fn``.
        termination_fn: batched ``-> bool [B]``; by default the task's, else
            ``unwrapped.termination_fn`` if the env has one. The task's (or the env's)
            ``goal_dims`` (the observation's trailing goal entries) is passed to the model.
        model: ``"ensemble"`` (probabilistic ensemble), ``"gp"``, ``"mlp"`` or ``"de"``.
        planner: ``"cem"``, ``"mppi"``, ``"random"`` or ``"gradient"``.
        episodes: episodes in all, the ``seed_episodes`` random ones included.
        seed: seeds the env, the exploration, the model and the planner.
        progress: show a progress bar on stderr.
        callback: called with each finished :class:`Episode`.
        model_overrides, planner_overrides: settings for the model's or the optimiser's
            config, for names that several configs share (``iterations``).
        **overrides: any field of :class:`MBRLConfig`, :class:`MPCConfig`, the
            optimiser's config or the model's config, by name; the optimiser's and the
            model's also as ``optimizer.<name>`` and ``model.<name>``, which a name both
            have needs (``**{"model.iterations": 200}``).

    Raises:
        ConfigError: an unknown or invalid setting.
        ValueError: the env has no Box spaces, or no reward function is available.
    """
    if isinstance(env, str):
        env = make_env(env)
    if not (isinstance(env.observation_space, gym.spaces.Box) and isinstance(env.action_space, gym.spaces.Box)):
        raise ValueError(f"train_mbrl needs Box observation and action spaces, got {env.observation_space} and {env.action_space}")
    task = task_for(env) if reward_fn is None else _layout_task(env)
    if task is not None and reward_fn is None:
        reward_fn, termination_fn = task.reward, termination_fn or task.termination_fn
    reward_fn = reward_fn or getattr(env.unwrapped, "reward_fn", None)
    if reward_fn is None:
        raise ValueError(f"no reward_fn given and no task is registered for {env_id(env)!r} (mbrl_control.tasks): "
                         "the planner needs a batched torch reward_fn(obs, act, next_obs)")
    termination_fn = termination_fn or getattr(env.unwrapped, "termination_fn", None)
    if not 1 <= seed_episodes <= episodes:
        raise ConfigError(f"seed_episodes = {seed_episodes}: must be between 1 and episodes = {episodes}")
    if model not in REGRESSORS:
        raise ConfigError(f"model = {model!r}: choose one of {', '.join(REGRESSORS)}")

    mpc_config = MPCConfig().replace(optimizer=planner, seed=seed)  # refuses an unknown planner
    loop_over, mpc_over, optimizer_over, model_over = split_overrides(
        overrides, MBRLConfig, MPCConfig, ("optimizer", OPTIMIZERS[planner].Config), ("model", REGRESSORS[model].Config)
    )
    mpc_config = mpc_config.replace(**mpc_over)
    config = MBRLConfig().replace(**loop_over)
    optimizer_over.update(planner_overrides or {})
    model_over.update(model_overrides or {})
    layout, derive = model_layout(env, task)
    model_over = {**layout, **model_over}

    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    low, high = env.action_space.low.astype(np.float32), env.action_space.high.astype(np.float32)
    derive = derive if model_over.get("derived_dims") else None
    dynamics = make_model(model, obs_dim, act_dim, derive=derive, **{**model_over, "seed": seed})
    controller = MPCController(
        dynamics, reward_fn, low, high, config=mpc_config, termination_fn=termination_fn,
        optimizer_overrides=optimizer_over,
    )
    loop = _Loop(env, config, controller, seed, episodes if progress else 0, callback)
    threads = torch.get_num_threads()
    torch.set_num_threads(mpc_config.threads)  # fitting too
    try:
        for index in range(episodes):
            loop.run_episode(index, random=index < seed_episodes)
    finally:
        torch.set_num_threads(threads)
        loop.close()
    return MBRLResult(loop.episodes, loop.dataset, controller.model, controller, loop.fit_reports)


def _layout_task(env: gym.Env):
    """The env's task for its observation layout only (the caller brings the reward): None
    where there is none, or where the env lacks what the task's reward would need."""
    try:
        return task_for(env)
    except ValueError:
        return None


def explore(env: gym.Env, episodes: int, seed: int = 0) -> TransitionDataset:
    """``episodes`` whole episodes of uniformly random actions in ``env`` (the data MBRL
    starts from; all of version 0.5's data)."""
    rng = np.random.default_rng(seed)
    low, high = env.action_space.low, env.action_space.high
    data = TransitionDataset(env.observation_space.shape[0], env.action_space.shape[0])
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        done = False
        while not done:
            action = rng.uniform(low, high)
            next_obs, _, terminated, truncated, _ = env.step(action)
            data.append(obs, action, next_obs, episode=episode)
            obs, done = next_obs, terminated or truncated
    return data


class _Loop:
    """The state of one :func:`train_mbrl` run."""

    def __init__(self, env, config: MBRLConfig, controller: MPCController, seed: int, progress: int, callback) -> None:
        self.env, self.config, self.controller, self.callback = env, config, controller, callback
        self.dataset = TransitionDataset(env.observation_space.shape[0], env.action_space.shape[0])
        self.episodes: list[Episode] = []
        self.fit_reports: list[FitReport] = []
        self.rng = np.random.default_rng(seed)
        self.seed = seed
        self.fitted = False
        self.fitted_size = 0  # transitions of the last fit
        self.bar = None
        if progress:
            from tqdm import tqdm

            self.bar = tqdm(total=progress, unit="episode", file=sys.stderr, desc="MBRL")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def fit(self) -> float:
        report = self.controller.model.fit(self.dataset)
        self.fit_reports.append(report)
        self.fitted, self.fitted_size = True, len(self.dataset)
        return report.seconds

    def refit_due(self, end: bool = False) -> bool:
        """Version 1.5 with ``retrain_every``: enough new data since the last fit — at least
        ``retrain_every`` steps and a ``retrain_growth`` fraction more during an episode, the
        fraction alone at its end (so that episodes shorter than ``retrain_every``, a
        pendulum falling, still refit)."""
        cfg, new = self.config, len(self.dataset) - self.fitted_size
        if cfg.version != "1.5" or not cfg.retrain_every or new == 0:
            return False
        return new >= (0 if end else cfg.retrain_every) and new >= cfg.retrain_growth * self.fitted_size

    def refit_at_episode_end(self) -> bool:
        """The first fit; none for version 0.5 (fit once); :meth:`refit_due` for version 1.5
        with ``retrain_every``; otherwise after every episode."""
        cfg = self.config
        if not self.fitted:
            return True
        if cfg.version == "0.5":
            return False
        if cfg.version == "1.5" and cfg.retrain_every:
            return self.refit_due(end=True)
        return True

    def run_episode(self, index: int, random: bool) -> None:
        env, controller, cfg = self.env, self.controller, self.config
        obs, info = env.reset(seed=self.seed if index == 0 else None)
        controller.reset()
        low, high = env.action_space.low, env.action_space.high
        episode_return, length, fit_seconds, done = 0.0, 0, 0.0, False
        planning_before, plan_left = len(controller.planning_times), 0
        while not done:
            if random or not self.fitted:
                action = self.rng.uniform(low, high).astype(np.float32)
            elif cfg.version == "1.0":  # open loop: replan when the plan is used up
                horizon = controller.config.horizon
                if plan_left == 0:
                    first = controller.act(obs)  # the safe action if the model failed
                    plan, plan_left = controller.last_result.actions.numpy(), horizon
                    if not np.all(np.isfinite(plan)):
                        plan = np.tile(first, (horizon, 1))
                action, plan_left = plan[horizon - plan_left].astype(np.float32), plan_left - 1
                if plan_left < horizon - 1:  # act() booked the plan's first step itself
                    controller.record(action)
            else:
                action = controller.act(obs)
            next_obs, reward, terminated, truncated, info = env.step(action)
            self.dataset.append(obs, action, next_obs, episode=index)
            episode_return += float(reward)
            length += 1
            obs, done = next_obs, terminated or truncated
            if not random and self.fitted and self.refit_due():
                fit_seconds += self.fit()
        if self.refit_at_episode_end():
            fit_seconds += self.fit()
        times = controller.planning_times[planning_before:]
        record = Episode(
            index=index,
            phase="seed" if random else "mpc",
            episode_return=episode_return,
            length=length,
            success=bool(info["success"]) if "success" in info else None,
            final_distance=float(info["distance"]) if "distance" in info else None,
            planning_hz=1.0 / float(np.mean(times)) if times else math.nan,
            fit_seconds=fit_seconds,
        )
        self.episodes.append(record)
        if self.bar is not None:
            done_mpc = [e.success for e in self.episodes if e.phase == "mpc" and e.success is not None]
            self.bar.set_postfix(
                ret=f"{episode_return:.1f}",
                success=f"{np.mean(done_mpc):.0%}" if done_mpc else "-",
                plan_hz="-" if math.isnan(record.planning_hz) else f"{record.planning_hz:.0f}",
            )
            self.bar.update()
        if self.callback is not None:
            self.callback(record)
