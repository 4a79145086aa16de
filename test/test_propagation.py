"""PETS propagation: member assignment as specified, and costs that planners can use."""

import numpy as np
import pytest
import torch

from mbrl_control.data import TransitionDataset
from mbrl_control.models import make_model
from mbrl_control.planning import CEM
from mbrl_control.planning.propagation import PolicyProposals, trajectory_cost


def block_members(members: int, rows: int) -> torch.Tensor:
    """Member-major assignment [rows]: the first rows/E rows use member 0, the next member 1, …"""
    return torch.arange(members).repeat_interleave(rows // members)


class MemberEcho:
    """A fake ensemble whose member e moves every state by +e, so a rollout shows which
    member each particle used at each step."""

    history = 0

    def __init__(self, members: int) -> None:
        self.members = members

    def sample(self, obs, act, past=None, noise=None, members=None, generator=None):
        return obs + block_members(self.members, len(obs))[:, None].float()

    def predict_mean(self, obs, act, past=None):
        return obs + (self.members - 1) / 2


def used_members(propagation: str, members=5, particles=10, candidates=3, horizon=6):
    steps = []

    def recording_reward(obs, act, next_obs):
        steps.append((next_obs - obs)[:, 0].round().long())
        return torch.zeros(len(obs))

    cost = trajectory_cost(MemberEcho(members), torch.zeros(1), recording_reward, particles=particles,
                           propagation=propagation, generator=torch.Generator().manual_seed(0))
    cost(torch.zeros(candidates, horizon, 2))
    return torch.cat(steps).view(horizon, -1)  # [H, P·N] member per step per particle (row = p·N + n)


def test_ts_inf_fixes_one_member_per_particle_and_spreads_them_evenly():
    used = used_members("ts_inf", members=5, particles=10, candidates=3)
    assert torch.all(used == used[0])  # the same member at every step
    per_candidate = used[0].view(10, 3)  # [P, N]
    for n in range(3):
        assert torch.bincount(per_candidate[:, n], minlength=5).tolist() == [2] * 5


def test_ts1_draws_members_afresh_each_step_balanced():
    used = used_members("ts1", members=5, particles=10, candidates=3, horizon=8)
    for step in used:
        assert torch.bincount(step, minlength=5).tolist() == [6] * 5  # balanced per step
    changes = (used[1:] != used[:-1]).float().mean()
    assert changes > 0.6  # a fresh random member: the same one again only 1 time in 5


def test_particles_round_up_to_a_multiple_of_the_ensemble():
    assert used_members("ts_inf", members=5, particles=7, candidates=2).shape[1] == 10 * 2


def test_expectation_is_one_deterministic_particle():
    used = used_members("expectation", members=5, candidates=3)
    assert used.shape[1] == 3 and torch.all(used == 2)  # the fake mean moves by (E-1)/2


def test_member_major_fast_path_equals_evaluating_members_separately():
    model = make_model("de", 2, 1, members=4, hidden=16, layers=2, max_epochs=2)
    rng = np.random.default_rng(0)
    data = TransitionDataset(2, 1)
    data.append(rng.normal(size=(200, 2)), rng.normal(size=(200, 1)), rng.normal(size=(200, 2)), episode=np.arange(200) // 20)
    model.fit(data)
    obs, act = torch.randn(12, 2), torch.randn(12, 1)
    fast = model.sample(obs, act, noise=torch.zeros(12, 2))
    for e in range(4):
        rows = slice(3 * e, 3 * e + 3)
        separate = model.sample(obs[rows], act[rows], noise=torch.zeros(3, 2), members=torch.full((3,), e))
        torch.testing.assert_close(fast[rows], separate)


class Integrator:
    """s' = s + 0.1·a exactly, as a one-member model."""

    members, history = 1, 0

    def sample(self, obs, act, past=None, noise=None, members=None, generator=None):
        return obs + 0.1 * act

    def predict_mean(self, obs, act, past=None):
        return self.sample(obs, act)


def distance_reward(obs, act, next_obs):
    return -next_obs.square().sum(-1)


def test_cem_on_the_cost_drives_the_state_to_the_goal():
    cost = trajectory_cost(Integrator(), torch.tensor([0.5, -0.3]), distance_reward, propagation="expectation")
    plan = CEM(8, -torch.ones(2), torch.ones(2), iterations=8, population=200, elites=20).optimize(cost, generator=torch.Generator().manual_seed(0))
    assert plan.actions[0, 0] < -0.9 and plan.actions[0, 1] > 0.9  # full speed toward the origin
    assert plan.cost < float(cost(torch.zeros(1, 8, 2))[0])


def test_termination_stops_the_reward():
    def stop_immediately(obs, act, next_obs):
        return torch.ones(len(obs), dtype=torch.bool)

    plain = trajectory_cost(Integrator(), torch.ones(2), distance_reward, propagation="expectation")
    ended = trajectory_cost(Integrator(), torch.ones(2), distance_reward, propagation="expectation", termination_fn=stop_immediately)
    actions = torch.zeros(1, 5, 2)
    assert float(ended(actions)[0]) == pytest.approx(float(plain(actions[:, :1])[0]))  # only the first step counts


def test_same_seed_same_plan_with_a_learned_ensemble():
    model = make_model("pe", 2, 1, members=3, hidden=16, layers=2, max_epochs=3)
    rng = np.random.default_rng(1)
    s = rng.normal(size=(300, 2))
    a = rng.uniform(-1, 1, size=(300, 1))
    data = TransitionDataset(2, 1)
    data.append(s, a, s + 0.1 * a, episode=np.arange(300) // 30)
    model.fit(data)

    def plan(seed):
        generator = torch.Generator().manual_seed(seed)
        cost = trajectory_cost(model, torch.tensor([0.5, 0.5]), distance_reward, particles=6, generator=generator)
        return CEM(5, -torch.ones(1), torch.ones(1), population=50, elites=5, iterations=3).optimize(cost, generator=generator).actions

    torch.testing.assert_close(plan(7), plan(7))
    assert not torch.equal(plan(7), plan(8))


def test_unknown_propagation_is_refused():
    with pytest.raises(ValueError, match="propagation = 'ts2'"):
        trajectory_cost(Integrator(), torch.zeros(2), distance_reward, propagation="ts2")


def test_risk_aversion_penalises_disagreeing_particles():
    def progress(obs, act, next_obs):
        return next_obs[:, 0]  # particles on different members earn different returns

    def make(risk):
        return trajectory_cost(MemberEcho(4), torch.zeros(1), progress, particles=8, risk=risk)

    actions = torch.zeros(2, 3, 1)
    neutral, averse = make(0.0)(actions), make(1.0)(actions)
    assert torch.all(averse > neutral)
    # returns of members 0..3 over 3 steps: 0+0+0, 1+2+3, 2+4+6, 3+6+9 → mean 9
    torch.testing.assert_close(neutral, torch.full((2,), -9.0))


def fitted_history_ensemble():
    """A small probabilistic ensemble whose step reads the action before it too (history 1)."""
    model = make_model("pe", 2, 1, members=3, hidden=16, layers=2, max_epochs=3, history=1)
    rng = np.random.default_rng(2)
    s, a = rng.normal(size=(300, 2)), rng.uniform(-1, 1, size=(300, 1))
    data = TransitionDataset(2, 1)
    data.append(s, a, s + 0.1 * a, episode=np.arange(300) // 30)
    model.fit(data)
    return model


def policy(obs):
    return (-3.0 * obs[:, :1]).clamp(-1, 1)  # [B, 1]


@pytest.mark.parametrize("propagation", ["expectation", "ts_inf"])
def test_policy_proposals_are_chosen_in_the_rollout_and_scored_as_any_candidate(propagation):
    """A policy's proposals are filled in by the first cost call (in its candidates too),
    from the nominal state: under ``expectation`` the policy's sequence through the model's
    mean, step by step. Each is scored as the same sequence given as a plain candidate, by
    the same particles; later calls leave them alone."""
    model, obs, past = fitted_history_ensemble(), torch.tensor([0.6, -0.2]), torch.tensor([[0.3]])
    offsets = 0.8 * torch.randn(3, 5, 1, generator=torch.Generator().manual_seed(0))
    offsets[0] = 0.0
    clip = lambda a: a.clamp(-0.5, 0.5)  # noqa: E731
    proposals = PolicyProposals(policy, offsets, clip)
    samples = torch.rand(4, 5, 1, generator=torch.Generator().manual_seed(1)) - 0.5
    candidates = torch.cat([samples, proposals.actions])

    def cost(proposing):
        return trajectory_cost(model, obs, distance_reward, particles=6, propagation=propagation, past=past,
                               generator=torch.Generator().manual_seed(3), proposals=proposing)

    costs = cost(proposals)(candidates)
    assert not proposals.pending and torch.all(proposals.actions.abs() <= 0.5)
    torch.testing.assert_close(candidates[4:], proposals.actions)  # filled where the optimiser reads them
    torch.testing.assert_close(costs, cost(None)(candidates))  # scored open loop, as plain candidates
    assert torch.all((proposals.actions[1:] - proposals.actions[:1]).abs() <= offsets[1:].abs() + 1e-6)
    if propagation == "expectation":
        state, before, expected = obs[None], past[None], []
        for _ in range(5):
            action = clip(policy(state))
            expected.append(action[0])
            state, before = model.predict_mean(state, action, before), action[:, None]
        torch.testing.assert_close(proposals.actions[0], torch.stack(expected))
    filled = proposals.actions.clone()
    cost(proposals)(candidates)
    torch.testing.assert_close(proposals.actions, filled)
    with pytest.raises(ValueError, match="2 candidates are NaN, but 3 proposals"):
        cost(PolicyProposals(policy, offsets, clip))(torch.cat([samples, torch.full((2, 5, 1), float("nan"))]))
