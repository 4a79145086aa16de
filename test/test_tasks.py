"""Every registered task's torch reward and termination equal the env's own on recorded
transitions; envs are found by id and refused when made without what the reward needs."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from mbrl_control import ENV_ID
from mbrl_control.tasks import TASKS, Task, make_env, task_for

STEPS = 1500
# The double pendulum's tip comes from MuJoCo's site positions, slightly behind the observed
# angles (see InvertedDoublePendulum); every other task is exact to float64 round-off.
TOLERANCE = {"InvertedDoublePendulum-v5": 1e-3}


def record(env_id: str, steps: int = STEPS, seed: int = 0):
    """Transitions under uniformly random actions, with the env's rewards and terminations."""
    env = make_env(env_id)
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    rows = []
    for _ in range(steps):
        action = env.action_space.sample()
        next_obs, reward, terminated, truncated, _ = env.step(action)
        rows.append((obs, action, next_obs, reward, terminated))
        obs = env.reset()[0] if terminated or truncated else next_obs
    task = task_for(env)
    env.close()
    obs, act, next_obs, rewards, terminated = (np.array(column) for column in zip(*rows))
    return task, torch.from_numpy(obs), torch.from_numpy(act.astype(np.float64)), torch.from_numpy(next_obs), rewards, terminated


@pytest.mark.parametrize("env_id", sorted(TASKS))
def test_task_reward_and_termination_equal_the_env(env_id):
    task, obs, act, next_obs, rewards, terminated = record(env_id)
    assert task is not None and task.env_id == env_id
    reward = task.reward(obs, act, next_obs)
    assert reward.shape == (STEPS,)
    faithful = np.ones(STEPS, dtype=bool)
    if env_id == "InvertedDoublePendulum-v5":  # its observation clips velocities at ±10; the env's penalty does not
        faithful = next_obs[:, 5:8].abs().max(1).values.numpy() < 10
        assert faithful.mean() > 0.99
    np.testing.assert_allclose(reward.numpy()[faithful], rewards[faithful], rtol=0, atol=TOLERANCE.get(env_id, 1e-6))
    done = task.termination(obs, act, next_obs)
    assert done.dtype == torch.bool and done.shape == (STEPS,)
    np.testing.assert_array_equal(done.numpy(), terminated)
    assert task.terminates == bool(terminated.any()) or not task.terminates  # a task that never ends never says so
    if task.terminates:
        assert terminated.any() and task.termination_fn is not None
    else:
        assert task.termination_fn is None


@pytest.mark.parametrize("env_id", ["Hopper-v5", "Pusher-v5", ENV_ID])
def test_task_reward_in_float32_with_extra_batch_dims(env_id):
    task, obs, act, next_obs, rewards, _ = record(env_id, steps=300)
    batched = task.reward(*(x.float().reshape(3, 100, -1) for x in (obs, act, next_obs)))
    assert batched.shape == (3, 100) and batched.dtype == torch.float32
    np.testing.assert_allclose(batched.reshape(-1).numpy(), rewards, rtol=1e-5, atol=1e-4)


def test_task_reads_the_envs_own_weights():
    env = make_env("HalfCheetah-v5", ctrl_cost_weight=0.5, forward_reward_weight=2.0)
    obs, _ = env.reset(seed=0)
    action = env.action_space.sample()
    next_obs, reward, *_ = env.step(action)
    task = task_for(env)
    as_tensor = lambda x: torch.as_tensor(np.asarray(x, dtype=np.float64))[None]  # noqa: E731
    assert float(task.reward(as_tensor(obs), as_tensor(action), as_tensor(next_obs))) == pytest.approx(reward, abs=1e-6)  # the env squares float32 actions


def test_a_runner_made_without_its_position_is_refused_with_the_fix():
    with pytest.raises(ValueError, match=r"exclude_current_positions_from_observation=False.*make_env"):
        task_for(gym.make("HalfCheetah-v5"))


def test_an_env_without_a_task_has_none():
    assert task_for(gym.make("Pendulum-v1")) is None
    assert make_env("Pendulum-v1").observation_space.shape == (3,)


def test_train_mbrl_finds_the_task_by_env_id():
    from mbrl_control import train_mbrl

    result = train_mbrl("InvertedPendulum-v5", model="mlp", episodes=2, seed=0, horizon=3, population=16, elites=4,
                        max_epochs=5, hidden=16)
    assert result.controller.reward_fn.__self__.env_id == "InvertedPendulum-v5"
    assert result.controller.termination_fn is not None
    assert result.model.config.goal_dims == 0 and len(result.episodes) == 2
    assert result.episodes[0].length < 100  # a random pendulum falls: the task's termination ended it


def test_an_env_made_without_the_tasks_settings_still_runs_with_its_own_reward():
    from mbrl_control import train_mbrl

    env = gym.make("HalfCheetah-v5", max_episode_steps=20)  # no x position: the task's reward cannot be computed

    def velocity_reward(obs, act, next_obs):
        return next_obs[..., 8] - 0.1 * (act * act).sum(-1)

    result = train_mbrl(env, reward_fn=velocity_reward, model="mlp", episodes=2, horizon=2, population=8, elites=2,
                        max_epochs=2, hidden=8)
    assert result.model.config.free_dims == 0 and result.controller.reward_fn is velocity_reward


@pytest.mark.parametrize("env_id", sorted(env for env, task in TASKS.items() if task.bounds is not Task.bounds))
def test_task_bounds_hold_every_state_the_env_visits(env_id):
    """A task's ``bounds`` (where a dynamics model holds its predictions) are where its
    system can be: no recorded state leaves them."""
    task, obs, _, next_obs, _, _ = record(env_id, steps=300)
    bounds = task.bounds()
    learned = obs.shape[1] - task.goal_dims - task.derived_dims
    low, high = (torch.as_tensor(np.asarray(b)) for b in bounds)
    assert low.shape == high.shape == (learned,)
    for states in (obs, next_obs):
        assert torch.all(states[:, :learned] >= low) and torch.all(states[:, :learned] <= high)


def test_the_arm_stops_at_its_bounds_and_models_are_made_with_them():
    """Joints driven at full speed into their limits for a whole episode stop within the
    task's bounds, near them (those the arm's own links do not block first); the models
    ``train_mbrl`` and policy search make hold them."""
    from mbrl_control.tasks import model_layout

    env = make_env(ENV_ID)
    task = task_for(env)
    low, high = task.bounds()
    n = env.action_space.shape[0]
    for sign, bound in ((1.0, high), (-1.0, low)):
        env.reset(seed=0)
        for _ in range(60):
            obs, *_ = env.step(np.full(n, sign, dtype=np.float32))
        assert np.all(sign * (obs[:n] - bound[:n]) <= 0)
        assert np.sum(np.abs(obs[:n] - bound[:n]) < 0.05) >= 3
    layout, _ = model_layout(env, task)
    np.testing.assert_array_equal(layout["bounds"][1], high)
