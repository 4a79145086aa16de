"""``train_policy``: policy-gradient training in a gymnasium environment, with evaluation,
checkpoints (policy, value, observation statistics, optimiser states) and resuming.

    result = train_policy("Reacher-v5", algo="ppo", total_steps=100_000, seed=0)
    result.eval_curve          # [(env_steps, mean eval return)]
    result.policy(obs)         # deterministic action for an observation (numpy in, numpy out)
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
import numpy as np
import torch

from mbrl_control import __version__
from mbrl_control.checkpoint import CheckpointError, load_torch, save_torch, source_name
from mbrl_control.policies.actor_critic import A2C
from mbrl_control.policies.config import PolicyConfig
from mbrl_control.policies.learner import Learner
from mbrl_control.policies.networks import GaussianPolicy, ValueNetwork
from mbrl_control.policies.ppo import PPO, PPOKL
from mbrl_control.policies.reinforce import Reinforce
from mbrl_control.policies.rollout import EnvFactory, EpisodeStats, RolloutCollector, evaluate, make_vector_env
from mbrl_control.policies.trust_region import TRPO, NaturalGradient

LEARNERS: dict[str, type[Learner]] = {
    "reinforce": Reinforce, "a2c": A2C, "npg": NaturalGradient, "trpo": TRPO, "ppo": PPO, "ppo_kl": PPOKL,
}
KIND = "mbrl_control.policy"
EVAL_SEED = 1_000_003  # evaluation episodes use their own seeds: the same targets at every evaluation


@dataclass
class PolicyResult:
    """Outcome of :func:`train_policy`.

    Attributes:
        policy: the trained :class:`GaussianPolicy`; ``policy(obs)`` gives the deterministic
            action for a numpy observation [obs_dim] or [B, obs_dim].
        eval_curve: (env steps, mean return of the deterministic policy) at each evaluation.
        success_curve: (env steps, success rate) where the environment reports ``success``.
        steps_per_second: environment steps per second of training (collection and updates,
            evaluation excluded).
        updates: one dict of the learner's metrics per batch, with ``env_steps``.
    """

    policy: GaussianPolicy
    value: ValueNetwork
    config: PolicyConfig
    env_steps: int
    eval_curve: list[tuple[int, float]] = field(default_factory=list)
    success_curve: list[tuple[int, float]] = field(default_factory=list)
    steps_per_second: float = math.nan
    updates: list[dict[str, float]] = field(default_factory=list)
    train_episodes: EpisodeStats = field(default_factory=EpisodeStats)
    learner_state: dict[str, Any] | None = None  # optimiser states, for resuming


def make_networks(obs_dim: int, low: np.ndarray, high: np.ndarray, cfg: PolicyConfig) -> tuple[GaussianPolicy, ValueNetwork]:
    """Policy and value networks of ``cfg``'s shape."""
    hidden = (cfg.hidden,) * cfg.layers
    policy = GaussianPolicy(obs_dim, low, high, hidden, cfg.activation, cfg.log_std_init, cfg.state_dependent_std,
                            cfg.squash, cfg.relative_goal, cfg.goal_scale, cfg.members)
    return policy, ValueNetwork(policy, hidden, cfg.activation)


def train_policy(
    env: str | EnvFactory,
    algo: str = "ppo",
    total_steps: int = 100_000,
    seed: int = 0,
    progress: bool = False,
    callback: Callable[[dict[str, float]], None] | None = None,
    resume: str | Path | None = None,
    **overrides: Any,
) -> PolicyResult:
    """Train a Gaussian policy by ``algo`` for ``total_steps`` environment steps.

    Args:
        env: a gymnasium id or a factory returning a new env (Box observation and action
            spaces; actions with finite bounds).
        algo: ``reinforce``, ``a2c``, ``npg``, ``trpo``, ``ppo`` or ``ppo_kl``.
        progress: show a tqdm bar (steps, eval return, success, steps/s) on stderr.
        callback: called with each update's metrics (``env_steps`` included).
        resume: a checkpoint written by :func:`save_policy` of a run of this environment:
            networks, observation statistics, optimiser states and curves are restored and
            training continues up to ``total_steps``.
        **overrides: fields of :class:`PolicyConfig` by name.

    Raises:
        ConfigError: an override is not a field or its value is refused.
        CheckpointError: ``resume`` is unreadable or of another environment's dims.
    """
    cfg = PolicyConfig(algo=algo, seed=seed).replace(**overrides)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        return _train(env, cfg, total_steps, progress, callback, resume)
    finally:
        torch.set_num_threads(previous_threads)


def _train(
    env: str | EnvFactory,
    cfg: PolicyConfig,
    total_steps: int,
    progress: bool,
    callback: Callable[[dict[str, float]], None] | None,
    resume: str | Path | None,
) -> PolicyResult:
    torch.manual_seed(cfg.seed)
    envs = make_vector_env(env, cfg.n_envs, cfg.seed)
    eval_env = gym.make(env) if isinstance(env, str) else env()
    space = envs.single_action_space
    obs_dim = envs.single_observation_space.shape[0]
    policy, value = make_networks(obs_dim, space.low, space.high, cfg)
    learner = LEARNERS[cfg.algo](policy, value, cfg)
    result = PolicyResult(policy, value, cfg, env_steps=0)
    if resume is not None:
        restore_training(resume, result, learner, obs_dim, space)
        envs.reset(seed=cfg.seed + result.env_steps)  # a fresh stream of episodes, not a replay
    collector = RolloutCollector(envs, cfg.seed + result.env_steps)
    batch_steps = cfg.n_envs * cfg.n_steps
    next_eval = (result.env_steps // cfg.eval_every + 1) * cfg.eval_every if result.eval_curve else 0
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total_steps, initial=result.env_steps, unit="step", file=sys.stderr, dynamic_ncols=True)
    train_seconds = 0.0
    try:
        while True:
            if result.env_steps >= next_eval or result.env_steps >= total_steps:
                _evaluate(result, eval_env, cfg)
                next_eval = result.env_steps // cfg.eval_every * cfg.eval_every + cfg.eval_every
            if result.env_steps >= total_steps:
                break
            start = time.perf_counter()
            batch = collector.collect(policy, cfg.n_steps, result.train_episodes)
            metrics = learner.update(batch)
            train_seconds += time.perf_counter() - start
            result.env_steps += batch_steps
            metrics["env_steps"] = result.env_steps
            result.updates.append(metrics)
            if callback is not None:
                callback(metrics)
            if bar is not None:
                bar.update(batch_steps)
                postfix = {"eval": f"{result.eval_curve[-1][1]:.2f}", "steps/s": f"{result.env_steps / max(train_seconds, 1e-9):.0f}"}
                if result.success_curve:
                    postfix["success"] = f"{result.success_curve[-1][1]:.0%}"
                bar.set_postfix(postfix)
    finally:
        if bar is not None:
            bar.close()
        envs.close()
        eval_env.close()
    result.steps_per_second = (len(result.updates) * batch_steps) / train_seconds if train_seconds else math.nan
    result.learner_state = learner.state_dict()
    return result


def _evaluate(result: PolicyResult, env: gym.Env, cfg: PolicyConfig) -> None:
    stats = evaluate(result.policy, env, cfg.eval_episodes, EVAL_SEED)
    result.eval_curve.append((result.env_steps, float(np.mean(stats.returns))))
    if stats.successes:
        result.success_curve.append((result.env_steps, float(np.mean(stats.successes))))


# -- checkpoints ------------------------------------------------------------------------
def save_policy(result: PolicyResult, path: str | Path) -> Path:
    """Write the policy checkpoint atomically: networks with the observation statistics,
    dims and bounds, the config, optimiser states and curves (enough to resume)."""
    policy = result.policy
    payload = {
        "kind": KIND,
        "version": __version__,
        "obs_dim": policy.obs_dim,
        "act_dim": policy.act_dim,
        "low": policy.low.clone(),
        "high": policy.high.clone(),
        "config": dataclasses.asdict(result.config),
        "policy": policy.state_dict(),
        "value": result.value.state_dict(),
        "learner": result.learner_state,
        "env_steps": result.env_steps,
        "eval_curve": [list(x) for x in result.eval_curve],
        "success_curve": [list(x) for x in result.success_curve],
    }
    return save_torch(payload, path)


def load_policy(source: str | Path | bytes, obs_dim: int | None = None, act_dim: int | None = None) -> GaussianPolicy:
    """The policy of a checkpoint (a file, or its bytes from ``/mbrl/policy``), ready to act
    (observation statistics included).

    Raises:
        CheckpointError: unreadable, not a policy, inconsistent, or of other dims than the
            ``obs_dim``/``act_dim`` given.
    """
    payload = load_torch(source, KIND)
    return _policy_from(payload, source_name(source), obs_dim, act_dim)[0]


def _policy_from(
    payload: dict[str, Any], path: str | Path, obs_dim: int | None, act_dim: int | None
) -> tuple[GaussianPolicy, ValueNetwork, PolicyConfig]:
    try:
        found = (int(payload["obs_dim"]), int(payload["act_dim"]))
        if (obs_dim is not None and found[0] != obs_dim) or (act_dim is not None and found[1] != act_dim):
            raise CheckpointError(f"{path}: policy for obs_dim={found[0]}, act_dim={found[1]}, but this system has obs_dim={obs_dim}, act_dim={act_dim}")
        cfg = PolicyConfig(**payload["config"])
        policy, value = make_networks(found[0], payload["low"].numpy(), payload["high"].numpy(), cfg)
        policy.load_state_dict(payload["policy"])
        value.load_state_dict(payload["value"])
    except CheckpointError:
        raise
    except Exception as err:  # missing keys, wrong shapes, invalid config
        raise CheckpointError(f"{path}: inconsistent policy checkpoint: {err}") from None
    policy.eval()
    return policy, value, cfg


def restore_training(path: str | Path, result: PolicyResult, learner: Learner, obs_dim: int, space: gym.spaces.Box) -> None:
    """Load a :func:`save_policy` checkpoint into ``result``'s networks (in place), its
    optimiser states into ``learner`` and its curves into ``result``, to train on.

    Raises:
        CheckpointError: unreadable, of other dims or bounds, or of another algorithm.
    """
    payload = load_torch(path, KIND)
    policy, value, saved = _policy_from(payload, path, obs_dim, space.shape[0])
    if saved.algo != result.config.algo:
        raise CheckpointError(f"{path}: cannot resume: trained by {saved.algo}, asked to continue with {result.config.algo}")
    if not (np.allclose(payload["low"].numpy(), space.low) and np.allclose(payload["high"].numpy(), space.high)):
        raise CheckpointError(f"{path}: the policy was trained for other action bounds")
    try:
        result.policy.load_state_dict(policy.state_dict())
        result.value.load_state_dict(value.state_dict())
        if payload["learner"] is not None:
            learner.load_state_dict(payload["learner"])
        result.env_steps = int(payload["env_steps"])
        result.eval_curve = [tuple(x) for x in payload["eval_curve"]]
        result.success_curve = [tuple(x) for x in payload["success_curve"]]
    except Exception as err:
        raise CheckpointError(f"{path}: cannot resume from this checkpoint ({type(learner).__name__}): {err}") from None
