"""The MPC controller: closes the loop on known dynamics, falls back safely, keeps its warm start."""


import numpy as np
import pytest
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
    state, distances = np.array([0.8, -0.6]), []
    for _ in range(15):
        action = mpc.act(state)
        assert action.shape == (2,) and action.dtype == np.float32
        assert np.all(np.abs(action) <= 1.0)
        state = state + 0.1 * action
        distances.append(np.linalg.norm(state))
    assert np.mean(distances[-5:]) < 0.05  # reached in 10 steps (at full speed: 8), and held
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


class CostlyIntegrator(Integrator):
    """The integrator on a simulated clock: every predicted row costs ``seconds_per_row``
    (an exact GP's cost grows with its data the same way), so budgets are tested without
    reading the wall clock."""

    def __init__(self, clock, seconds_per_row):
        self.clock, self.seconds_per_row = clock, seconds_per_row

    def predict_mean(self, obs, act, past=None):
        self.clock[0] += self.seconds_per_row * len(obs)
        return super().predict_mean(obs, act)


def test_a_time_budget_holds_when_one_iteration_overruns_it_and_the_search_grows_back(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr("time.perf_counter", lambda: clock[0])
    model = CostlyIntegrator(clock, 2e-5)  # 64 sequences x 8 steps: 10 ms an iteration
    mpc = controller(model, time_budget=0.005, optimizer_overrides={"population": 64, "elites": 8, "iterations": 2})
    state = np.array([0.8, -0.6])
    for _ in range(6):
        state = state + 0.1 * mpc.act(state)
    assert mpc.planning_times[0] > 0.005  # the first iteration always runs: the overrun the controller corrects
    assert max(mpc.planning_times[-3:]) <= 0.005
    assert mpc.optimizer.config.population < 64 and mpc.optimizer.config.elites <= mpc.optimizer.config.population
    model.seconds_per_row = 0.0  # a cheaper model swapped in: the configured search comes back
    for _ in range(20):
        state = state + 0.1 * mpc.act(state)
    assert mpc.search_fraction == 1.0 and mpc.optimizer.config.population == 64
    assert np.linalg.norm(state) < 0.05  # the smaller searches still reached the goal


def test_without_a_time_budget_the_search_is_never_scaled(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr("time.perf_counter", lambda: clock[0])
    mpc = controller(CostlyIntegrator(clock, 1.0))
    for _ in range(3):
        mpc.act(np.array([0.5, 0.5]))
    assert mpc.search_fraction == 1.0 and mpc.optimizer.config == mpc.optimizer.configured


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


class Delay(Integrator):
    """A servo that acts two ticks late: s' = s + 0.1·a_{t-2}, the oldest action of the
    model's history."""

    history, act_dim = 2, 2

    def predict_mean(self, obs, act, past=None):
        return obs + 0.1 * past[:, 0]


def test_the_plan_rolls_through_the_actions_in_flight():
    from mbrl_control.planning.propagation import trajectory_cost

    progress = lambda obs, act, next_obs: next_obs[:, 0]  # noqa: E731
    sent = torch.tensor([[1.0, 0.0], [2.0, 0.0]])  # a_{t-2}, a_{t-1}: already on the bus
    cost = trajectory_cost(Delay(), torch.zeros(2), progress, propagation="expectation", past=sent)
    a0 = torch.tensor([[3.0, 0.0], [5.0, 0.0], [7.0, 0.0]])  # the candidate: a_t, a_{t+1}, a_{t+2}
    # s1 = 0.1·1, s2 = s1 + 0.1·2, s3 = s2 + 0.1·3: the candidate's first action acts last
    assert float(cost(a0[None])[0]) == pytest.approx(-(0.1 + 0.3 + 0.6))


def test_the_controller_books_the_actions_it_sends_and_forgets_them_on_reset():
    mpc = MPCController(Delay(), distance_reward, -np.ones(2), np.ones(2), horizon=4, propagation="expectation")
    assert mpc.past.shape == (2, 2) and not mpc.past.any()
    first = mpc.act(np.array([0.5, -0.5]))
    second = mpc.act(np.array([0.5, -0.5]))
    torch.testing.assert_close(mpc.past, torch.as_tensor(np.stack([first, second])))
    mpc.record(np.array([0.25, 0.0]))  # an action sent by someone else (a clamp, an open-loop step)
    torch.testing.assert_close(mpc.past[-1], torch.tensor([0.25, 0.0]))
    mpc.set_model(Integrator())  # a model without history keeps none
    assert mpc.past.shape == (0, 2)
    mpc.set_model(Delay())
    assert mpc.past.shape == (2, 2)
    mpc.reset()
    assert not mpc.past.any()


@pytest.mark.parametrize("name, propagation", [("gp", "expectation"), ("ensemble", "ts_inf")])
def test_the_model_brings_the_propagation_it_plans_with(name, propagation):
    """A GP plans with its mean unless told otherwise (trajectory sampling through its
    variance planned at 3.8 Hz under ros2 launch); a setting of the user's wins."""
    from mbrl_control.models import make_model

    model = make_model(name, 2, 2)
    assert MPCController(model, distance_reward, -np.ones(2), np.ones(2)).propagation == propagation
    assert MPCController(model, distance_reward, -np.ones(2), np.ones(2), propagation="ts1").propagation == "ts1"


def toward_origin(obs):
    """The optimum of the integrator's distance cost: full speed to the origin, [B, 2]."""
    return (-obs / 0.1).clamp(-1, 1)


def test_labels_sequences_of_states_together_as_it_plans_an_episode():
    """The expert's labels for recorded sequences: planned along each sequence with warm
    starts, all sequences in one search per step; the same as planning each alone with act,
    and the controller's own warm start and actions sent are kept."""
    settings = {"optimizer_overrides": {"population": 200, "elites": 20, "iterations": 4}}
    mpc = controller(**settings)
    mpc.act(np.array([0.5, 0.5]))
    plan, past = mpc._plan.clone(), mpc.past.clone()
    starts = np.array([[0.8, -0.6], [-0.5, 0.9], [0.6, 0.6]])
    sequences = np.stack([starts + 0.1 * t * -np.sign(starts) for t in range(4)], axis=1)  # [3, 4, 2], toward the origin
    labels = mpc.label(sequences)
    assert labels.shape == (3, 4, 2) and labels.dtype == np.float32
    assert np.all(np.sign(labels) == -np.sign(sequences)) and np.abs(labels).mean() > 0.6  # fast toward the origin
    torch.testing.assert_close(mpc._plan, plan)
    torch.testing.assert_close(mpc.past, past)
    alone = []
    for sequence in sequences:
        episode = controller(**settings)
        alone.append([episode.act(state) for state in sequence])
    np.testing.assert_allclose(labels, np.array(alone), atol=0.25)  # as good as planning each episode (other samples)
    one_by_one = controller(optimizer="icem", **settings).label(sequences)
    assert np.all(np.sign(one_by_one) == -np.sign(sequences)) and np.abs(one_by_one).mean() > 0.6
    with pytest.raises(ValueError, match="sequences in time order"):
        mpc.label(starts)


def test_a_broken_model_labels_with_the_safe_action():
    np.testing.assert_array_equal(controller(Broken()).label(np.ones((3, 5, 2))), np.zeros((3, 5, 2)))


def test_the_policy_inside_the_planner():
    """With the optimal policy proposing, a planner of 4 samples plans what it proposes;
    proposals stay inside the bounds; without proposals the policy is not used."""
    small = {"population": 4, "elites": 2, "iterations": 1}
    mpc = controller(proposals=3, optimizer_overrides=small)
    mpc.set_policy(toward_origin)
    state = np.array([0.8, -0.6])
    proposals = mpc.proposals(torch.as_tensor(state, dtype=torch.float32))
    assert proposals.actions.shape == (3, 8, 2) and proposals.pending  # chosen in the first rollout
    mpc.optimizer.optimize(mpc._cost(torch.as_tensor(state, dtype=torch.float32), mpc.past, proposals),
                           generator=mpc.generator, proposals=proposals.actions)
    assert not proposals.pending and torch.all(proposals.actions.abs() <= 1.0)
    action = mpc.act(state)
    np.testing.assert_allclose(action, [-1.0, 1.0])
    assert mpc.last_result.proposed
    labels = mpc.label(np.array([[[0.8, -0.6]], [[-0.05, 0.02]]]))
    np.testing.assert_allclose(labels[:, 0], [[-1.0, 1.0], [0.5, -0.2]], atol=1e-6)
    plain = controller(optimizer_overrides=small)
    plain.set_policy(toward_origin)  # proposals = 0: planned without it
    assert plain.proposals(torch.zeros(2)) is None


def test_a_gaussian_policy_proposes_its_mean_action_from_the_snapshot_taken_when_set():
    """A GaussianPolicy proposes through its numpy snapshot: the policy's own sequence is its
    mean action along the model's mean, and changes to the policy reach the planner only when
    it is set again."""
    from mbrl_control.policies.networks import GaussianPolicy

    torch.manual_seed(0)
    policy = GaussianPolicy(2, -np.ones(2), np.ones(2), hidden=(16, 16), squash=True, members=2)
    with torch.no_grad():
        policy.net[-1].bias.fill_(0.3)  # a mean action well away from zero
    mpc = controller(proposals=2, optimizer_overrides={"population": 4, "elites": 2, "iterations": 1})
    mpc.set_policy(policy)
    state = torch.tensor([0.8, -0.6])

    def sequence() -> torch.Tensor:
        proposals = mpc.proposals(state)
        with torch.no_grad():
            mpc.optimizer.optimize(mpc._cost(state, mpc.past, proposals), generator=mpc.generator, proposals=proposals.actions)
        return proposals.actions[0]

    expected, obs = [], state[None]
    with torch.no_grad():
        for _ in range(8):  # the policy's mean action along s' = s + 0.1 a
            expected.append(policy(obs)[0])
            obs = obs + 0.1 * expected[-1]
    before = sequence()
    torch.testing.assert_close(before, torch.stack(expected), atol=1e-5, rtol=0)
    assert before.abs().max() > 0.2
    with torch.no_grad():
        policy.net[-1].bias.fill_(-0.3)
    torch.testing.assert_close(sequence(), before)  # the snapshot
    mpc.set_policy(policy)
    assert torch.all(sequence()[0] < 0)
