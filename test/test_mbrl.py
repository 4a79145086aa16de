"""MPC on the arm: with the simulator as its model it reaches targets (the planner alone),
and the model-based loop learns to beat random actions from its own data."""

import gymnasium as gym
import mujoco
import numpy as np
import pytest
import torch

from mbrl_control import ENV_ID, train_mbrl
from mbrl_control.arm.sim import ArmSim
from mbrl_control.config import ConfigError
from mbrl_control.planning.mpc import MPCController

STATE = mujoco.mjtState.mjSTATE_PHYSICS


class SimulatorModel:
    """The simulator as a deterministic "model" (propagation="expectation"): every row
    of a rollout is the arm's full state, copied from the env when a rollout starts
    (every ``horizon`` calls) and stepped in a private simulator."""

    members, history = 1, 0

    def __init__(self, env: gym.Env, horizon: int) -> None:
        self.env, self.horizon, self.calls = env.unwrapped, horizon, 0
        self.sim = ArmSim(self.env.sim_config)
        self.sim.reset(np.zeros(self.sim.n_joints), self.env.sim.target)
        self.size = mujoco.mj_stateSize(self.sim.model, STATE)

    def predict_mean(self, obs: torch.Tensor, act: torch.Tensor, past: torch.Tensor | None = None) -> torch.Tensor:
        sim, rows = self.sim, len(obs)
        if self.calls % self.horizon == 0:  # a new rollout from the env's current state
            root = np.empty(self.size)
            mujoco.mj_getState(self.env.sim.model, self.env.sim.data, root, STATE)
            self.physics = np.tile(root, (rows, 1))
            self.setpoints = np.tile(self.env.sim._setpoint, (rows, 1))
            self.commands = np.tile(self.env.targets.command, (rows, 1))
            sim.target = self.env.sim.target
        self.calls += 1
        step = self.env.config.max_joint_step * np.clip(act.numpy(), -1, 1)
        next_obs = np.empty(obs.shape)
        for i in range(rows):
            mujoco.mj_setState(sim.model, sim.data, self.physics[i], STATE)
            sim._setpoint[:] = self.setpoints[i]
            self.commands[i] = np.clip(self.commands[i] + step[i], sim.command_low, sim.command_high)
            sim.step(self.commands[i])
            mujoco.mj_getState(sim.model, sim.data, self.physics[i], STATE)
            self.setpoints[i] = sim._setpoint
            next_obs[i] = np.concatenate([sim.joint_positions, sim.joint_velocities, sim.ee_position, sim.target])
        return torch.as_tensor(next_obs, dtype=torch.float32)


def test_mpc_with_the_simulator_as_model_reaches_targets():
    env = gym.make(ENV_ID)
    horizon = 4
    reached = []
    for seed in (1, 2):
        obs, info = env.reset(seed=seed)
        start = info["distance"]
        mpc = MPCController(
            SimulatorModel(env, horizon), env.unwrapped.reward_fn, env.action_space.low, env.action_space.high,
            horizon=horizon, propagation="expectation", seed=seed,
            optimizer_overrides={"population": 24, "elites": 4, "iterations": 2},
        )
        for _ in range(60):
            obs, _, _, _, info = env.step(mpc.act(obs))
            if info["success"]:
                break
        reached.append((start, info["distance"]))
    env.close()
    assert all(final < 0.02 < start for start, final in reached), reached


def test_learns_to_beat_random_actions():
    result = train_mbrl(ENV_ID, model="gp", planner="cem", episodes=3, seed_episodes=1, seed=3,
                        horizon=5, propagation="expectation", population=48, elites=6)
    assert [e.phase for e in result.episodes] == ["seed", "mpc", "mpc"]
    assert len(result.dataset) == 300 and result.episode_lengths == [100, 100, 100]
    # fits on the random episode (100), then each 50 new steps while data grow by a quarter: 150, 200, 250
    assert [r.train_size for r in result.fit_reports] == [100, 150, 200, 250] and result.model.dataset_size == 250
    # random actions barely move the end effector toward the target; the planner closes most of the gap
    random_final = result.final_distances[0]
    assert result.final_distances[-1] < min(0.5 * random_final, 0.05), result.final_distances
    assert result.episode_returns[-1] > result.episode_returns[0]


def test_settings_are_routed_and_checked():
    with pytest.raises(ConfigError, match="seed_episodes"):
        train_mbrl(ENV_ID, episodes=2, seed_episodes=3)
    with pytest.raises(ConfigError, match="horizon"):
        train_mbrl(ENV_ID, episodes=1, horizon=0)
    with pytest.raises(ConfigError, match="unknown setting 'not_a_setting'"):
        train_mbrl(ENV_ID, episodes=1, not_a_setting=1)
    with pytest.raises(ValueError, match="reward_fn"):
        train_mbrl(gym.make("Pendulum-v1"), episodes=1)


@pytest.mark.parametrize("version, retrain_every, growth, fits, replans", [
    ("0.5", 0, 0.0, 1, 40),    # fitted once on the random episode; MPC every step
    ("1.0", 0, 0.0, 3, 8),     # refit per episode; plans of 5 steps run open loop: 4 per episode
    ("1.5", 0, 0.0, 3, 40),    # refit per episode; MPC every step
    ("1.5", 10, 0.0, 5, 40),   # the seed fit, then every 10 steps of the 40 planned ones
    ("1.5", 5, 0.5, 3, 40),    # the seed fit (20), then at 30 and 45 transitions: 50 % more each time
])
def test_versions_fit_and_replan_as_specified(version, retrain_every, growth, fits, replans):
    env = gym.make(ENV_ID, episode_length=20)
    result = train_mbrl(env, model="mlp", episodes=3, version=version, retrain_every=retrain_every, retrain_growth=growth,
                        hidden=16, layers=1, max_epochs=3, horizon=5, population=8, elites=2)
    assert len(result.fit_reports) == fits
    assert len(result.controller.planning_times) == replans
    assert len(result.dataset) == 60 and sorted(set(result.dataset.episode)) == [0, 1, 2]
