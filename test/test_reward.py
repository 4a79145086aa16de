"""The torch reward function is the environment's reward, batched and differentiable."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from mbrl_control import ENV_ID
from mbrl_control.arm.reach import distance, reach_reward


@pytest.fixture(scope="module")
def transitions():
    """300 recorded transitions with random actions, some outside [-1, 1]."""
    env = gym.make(ENV_ID, action_cost=0.05)
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=0)
    rows = []
    for t in range(300):
        action = rng.uniform(-1.5, 1.5, size=5)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        rows.append((obs, action, next_obs, reward))
        obs = env.reset()[0] if terminated or truncated else next_obs
    reward_fn = env.unwrapped.reward_fn
    env.close()
    return reward_fn, *(np.array(column) for column in zip(*rows))


def test_torch_reward_equals_env_reward(transitions):
    reward_fn, obs, act, next_obs, rewards = transitions
    batched = reward_fn(torch.from_numpy(obs), torch.from_numpy(act), torch.from_numpy(next_obs))
    assert isinstance(batched, torch.Tensor) and batched.shape == (300,)
    np.testing.assert_allclose(batched.numpy(), rewards, rtol=0, atol=1e-12)


def test_reward_in_float32_and_extra_batch_dims(transitions):
    reward_fn, obs, act, next_obs, rewards = transitions
    as32 = [torch.from_numpy(x).float().reshape(3, 100, -1) for x in (obs, act, next_obs)]
    batched = reward_fn(*as32)
    assert batched.shape == (3, 100) and batched.dtype == torch.float32
    np.testing.assert_allclose(batched.reshape(-1).numpy(), rewards, atol=1e-5)


def test_reward_is_differentiable_even_at_the_target():
    next_obs = torch.zeros(4, 16, dtype=torch.float64, requires_grad=True)
    act = torch.full((4, 5), 0.5, dtype=torch.float64, requires_grad=True)
    with torch.no_grad():
        next_obs[1:, -6:-3] = torch.tensor([0.1, 0.0, 0.0], dtype=torch.float64)  # row 0: at the target
    reward = reach_reward(next_obs.detach(), act, next_obs, action_cost=0.1)
    reward.sum().backward()
    assert torch.all(torch.isfinite(next_obs.grad)) and torch.all(torch.isfinite(act.grad))
    np.testing.assert_allclose(act.grad.numpy(), -0.1 * 2 * 0.5)
    assert next_obs.grad[1, -6] < 0  # moving the end effector further away lowers the reward


def test_reward_falls_with_distance():
    next_obs = np.zeros((5, 16))
    next_obs[:, -6] = [0.0, 0.01, 0.05, 0.1, 0.3]
    reward = reach_reward(next_obs, np.zeros((5, 5)), next_obs, action_cost=0.0)
    np.testing.assert_allclose(distance(next_obs), [0.0, 0.01, 0.05, 0.1, 0.3], atol=1e-6)
    assert np.all(np.diff(reward) < 0)


def test_planner_reward_reads_the_end_effector_from_the_joints(transitions):
    """A model's prediction is scored by its joints: the EE entries of next_obs are not read."""
    reward_fn, obs, act, next_obs, rewards = transitions
    scrambled = next_obs.copy()
    scrambled[:, 10:13] = 5.0
    np.testing.assert_allclose(reward_fn(obs, act, scrambled), rewards, atol=1e-12)
    np.testing.assert_allclose(next_obs[:, 10:13], gym.make(ENV_ID).unwrapped.kinematics(next_obs[:, :5]), atol=1e-12)
