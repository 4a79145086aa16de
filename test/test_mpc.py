"""The MPC controller: closes the loop on known dynamics, falls back safely, keeps its warm start."""


import numpy as np
import torch

from mbrl_control.planning.mpc import MPCController

from test_propagation import Integrator, distance_reward


class Broken(Integrator):
    """A model that predicts NaN."""

    def sample(self, obs, act, past=None, noise=None, members=None, generator=None):
        return torch.full_like(obs, float("nan"))

    def predict_mean(self, obs, act, past=None):
        return self.sample(obs, act)


def controller(model=None, **overrides):
    return MPCController(model or Integrator(), distance_reward, -np.ones(2), np.ones(2),
                         horizon=8, propagation="expectation", **overrides)


def test_closes_the_loop_on_known_dynamics():
    mpc = controller()
    state = np.array([0.8, -0.6])
    for _ in range(15):
        action = mpc.act(state)
        assert action.shape == (2,) and action.dtype == np.float32
        assert np.all(np.abs(action) <= 1.0)
        state = state + 0.1 * action
    assert np.linalg.norm(state) < 0.05
    assert len(mpc.planning_times) == 15 and mpc.fallbacks == 0


def test_nan_model_gives_the_safe_action():
    mpc = controller(Broken())
    action = mpc.act(np.array([0.5, 0.5]))
    np.testing.assert_array_equal(action, [0.0, 0.0])
    assert mpc.fallbacks == 1
    mpc.set_model(Integrator())
    assert mpc.act(np.array([0.5, 0.5]))[0] < -0.2 and mpc.fallbacks == 1  # plans toward the origin again


def test_time_budget_is_the_optimiser_deadline():
    mpc = controller(time_budget=1e-9, optimizer_overrides={"iterations": 50})
    mpc.act(np.array([0.5, 0.5]))
    assert mpc.last_result.iterations == 1
    unlimited = controller(optimizer_overrides={"iterations": 50, "min_std": 0.0})
    unlimited.act(np.array([0.5, 0.5]))
    assert unlimited.last_result.iterations == 50


def test_warm_start_carries_the_plan_forward():
    mpc = controller(optimizer_overrides={"iterations": 3})
    mpc.act(np.array([0.8, -0.6]))
    kept = mpc._plan.clone()
    mpc.reset()
    assert mpc._plan is None
    torch.testing.assert_close(kept[:-1], mpc.last_result.actions[1:])


def test_same_seed_same_actions():
    def run(seed):
        mpc = MPCController(Integrator(), distance_reward, -np.ones(2), np.ones(2), horizon=5, seed=seed, particles=4)
        return np.stack([mpc.act(np.array([0.3, 0.3])) for _ in range(3)])

    np.testing.assert_array_equal(run(1), run(1))
