"""ArmReach behaves as a gymnasium environment and as the reaching task it documents."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mbrl_control import ENV_ID
from mbrl_control.arm.env import ArmReach
from mbrl_control.config import ConfigError


def test_passes_gymnasium_env_checker():
    env = gym.make(ENV_ID, render_mode="rgb_array")
    check_env(env.unwrapped)
    env.close()


def test_spaces(env):
    assert env.observation_space.shape == (16,)
    assert env.action_space.shape == (5,)
    np.testing.assert_array_equal(env.action_space.low, -1.0)
    np.testing.assert_array_equal(env.action_space.high, 1.0)


def test_thousand_random_actions_stay_within_joint_limits(env):
    sim = env.unwrapped.sim
    env.reset(seed=0)
    env.action_space.seed(0)
    lower, upper = sim.description.lower, sim.description.upper
    for _ in range(1000):
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        q = sim.joint_positions
        assert np.all(q >= lower) and np.all(q <= upper), q
        assert np.all(np.isfinite(obs)) and np.isfinite(reward) and np.all(np.isfinite(sim.data.qpos))
        if terminated or truncated:
            env.reset()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    actions=arrays(np.float64, (40, 5), elements=st.floats(-5.0, 5.0)),
    seed=st.integers(0, 2**31 - 1),
)
def test_any_action_sequence_keeps_the_arm_within_limits(env, actions, seed):
    """Out-of-range and bang-bang actions too: the arm never leaves its limits."""
    sim = env.unwrapped.sim
    env.reset(seed=seed)
    for action in actions:
        obs, *_ = env.step(action)
        assert np.all(sim.joint_positions >= sim.description.lower)
        assert np.all(sim.joint_positions <= sim.description.upper)
        assert np.all(np.isfinite(obs))


def rollout(seed: int, steps: int = 30) -> tuple[np.ndarray, np.ndarray]:
    env = gym.make(ENV_ID)
    obs, _ = env.reset(seed=seed)
    actions = np.random.default_rng(123).uniform(-1, 1, size=(steps, 5))
    observations, rewards = [obs], []
    for action in actions:
        obs, reward, *_ = env.step(action)
        observations.append(obs)
        rewards.append(reward)
    env.close()
    return np.array(observations), np.array(rewards)


def test_same_seed_same_trajectory_different_seed_different_target():
    obs_a, rew_a = rollout(seed=7)
    obs_b, rew_b = rollout(seed=7)
    np.testing.assert_array_equal(obs_a, obs_b)
    np.testing.assert_array_equal(rew_a, rew_b)
    obs_c, _ = rollout(seed=8)
    assert not np.allclose(obs_a[0, -3:], obs_c[0, -3:])


def test_targets_lie_in_the_reachable_workspace(env):
    cfg = env.unwrapped.config
    targets = []
    for seed in range(100):
        obs, _ = env.reset(seed=seed)
        targets.append(obs[-3:])
    targets = np.array(targets)
    assert np.all(targets[:, 2] >= cfg.target_min_height)
    assert np.all(np.hypot(targets[:, 0], targets[:, 1]) >= cfg.target_min_radius)
    shoulder = np.array([0.0, 0.0, 0.1])
    assert np.all(np.linalg.norm(targets - shoulder, axis=1) <= 0.325 + 1e-6)  # arm length from the shoulder
    assert len(np.unique(targets.round(4), axis=0)) == len(targets)
    assert targets[:, 0].std() > 0.05 and targets[:, 1].std() > 0.05  # spread around the base


def test_target_reached_by_moving_the_joints_there():
    """A target is the end effector of some pose: commanding that pose succeeds."""
    env = ArmReach(servo_deadband=0.0, joint_position_noise=0.0, joint_velocity_noise=0.0)
    obs, info = env.reset(seed=3)
    assert not info["success"]
    sim = env.sim
    # a pose for the target by Jacobian-transpose iterations on the model
    target = obs[-3:]
    q = sim.joint_positions
    for _ in range(200):
        ee, _ = sim.forward_kinematics(q)
        q = np.clip(q + 2.0 * sim.ee_jacobian(q).T @ (target - ee), sim.command_low, sim.command_high)
    step = env.config.max_joint_step
    for _ in range(60):
        action = np.clip((q - env.targets.command) / step, -1, 1)
        obs, reward, _, _, info = env.step(action)
    assert info["success"], info
    assert info["distance"] < env.config.success_distance
    assert reward > -env.config.success_distance - env.config.action_cost * 5
    assert np.linalg.norm(env.achieved_goal(obs) - target) == pytest.approx(info["distance"], abs=1e-6)  # the end effector


def test_episode_length_and_truncation():
    env = gym.make(ENV_ID, episode_length=7)
    env.reset(seed=0)
    flags = [env.step(env.action_space.sample())[3] for _ in range(7)]
    assert flags == [False] * 6 + [True]
    assert gym.make(ENV_ID).unwrapped.config.episode_length == 100
    assert gym.make(ENV_ID).unwrapped.sim.control_dt * 100 == pytest.approx(5.0)


def test_settings_reach_the_simulator_and_bad_ones_are_refused():
    env = gym.make(ENV_ID, action_latency=2, payload_mass=0.1, action_cost=0.5)
    assert env.unwrapped.sim.config.action_latency == 2
    assert env.unwrapped.config.action_cost == 0.5
    with pytest.raises(ConfigError, match="unknown setting 'horizon'"):
        gym.make(ENV_ID, horizon=3)
    with pytest.raises(ConfigError, match="episode_length = 0: must be >= 1"):
        gym.make(ENV_ID, episode_length=0)


def test_bad_actions_are_refused(env):
    with pytest.raises(gym.error.ResetNeeded):
        ArmReach().step(np.zeros(5))
    env.reset(seed=0)
    with pytest.raises(ValueError, match="finite"):
        env.step(np.array([0.0, np.nan, 0.0, 0.0, 0.0]))
    with pytest.raises(ValueError):
        env.step(np.zeros(3))


def test_zero_action_holds_the_arm(env):
    obs, _ = env.reset(seed=1)
    sim = env.unwrapped.sim
    start = sim.joint_positions
    for _ in range(40):
        obs, *_ = env.step(np.zeros(5))
    # gravity sag of the position servos, no drift
    np.testing.assert_allclose(sim.joint_positions, start, atol=0.03)
