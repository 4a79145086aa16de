"""Trajectory optimisers on known cost functions: they find minimisers, stay in bounds,
honour deadlines and warm starts, and are reproducible."""

import dataclasses
import time

import pytest
import torch

from mbrl_control.config import ConfigError
from mbrl_control.planning import CEM, OPTIMIZERS, colored_noise

H, A = 5, 2
LOW, HIGH = -torch.ones(A), torch.ones(A)
TARGET = torch.tensor([[0.3, -0.6], [0.1, 0.2], [-0.5, 0.5], [0.7, 0.0], [-0.2, -0.9]])


def quadratic(actions: torch.Tensor) -> torch.Tensor:
    """Σ_t ‖a_t - c_t‖² with a different minimiser c_t at every step."""
    return ((actions - TARGET) ** 2).sum(dim=(1, 2))


def himmelblau(actions: torch.Tensor) -> torch.Tensor:
    """Non-convex, four global minima of 0, on actions [N, 1, 2] scaled to [-5, 5]²."""
    x, y = 5 * actions[:, 0, 0], 5 * actions[:, 0, 1]
    return (x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2


def make(name: str, horizon: int = H, **overrides):
    return OPTIMIZERS[name](horizon, LOW, HIGH, **overrides)


@pytest.mark.parametrize(
    "name, overrides, tolerance",
    [("cem", {"iterations": 10, "population": 400, "elites": 40}, 0.02), ("gradient", {"steps": 100}, 0.01),
     ("mppi", {"iterations": 30, "population": 500, "temperature": 0.05, "noise_std": 0.2}, 0.05),
     # coloured samples suit smooth sequences; this minimiser jumps from step to step
     ("icem", {"iterations": 10, "population": 400, "elites": 40, "decay": 1.0, "execute": "mean"}, 0.05),
     ("icem", {"iterations": 10, "population": 400, "elites": 40, "noise_exponent": 0.0}, 0.05)],
)
def test_finds_the_minimiser_of_a_shifted_quadratic(name, overrides, tolerance):
    result = make(name, **overrides).optimize(quadratic, generator=torch.Generator().manual_seed(0))
    assert result.actions.shape == (H, A)
    assert torch.max(torch.abs(result.actions - TARGET)) < tolerance
    # the cost of the plan: scored (gradient), or estimated by the last iteration's samples it averages, within their spread
    assert result.cost == pytest.approx(float(quadratic(result.actions[None])[0]), abs=0 if name == "gradient" else 0.01)


@pytest.mark.parametrize(
    "name, overrides",
    [("cem", {"iterations": 20, "population": 500, "elites": 25}), ("mppi", {"iterations": 60, "population": 500, "temperature": 0.2, "noise_std": 0.1}),
     ("icem", {"iterations": 20, "population": 500, "elites": 25})],
)
def test_finds_a_global_minimum_of_a_non_convex_function(name, overrides):
    result = make(name, horizon=1, **overrides).optimize(himmelblau, generator=torch.Generator().manual_seed(1))
    assert result.cost < 0.05, result


def test_gradient_refinement_finishes_what_cem_started():
    generator = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    sampled = make("cem", iterations=2).optimize(quadratic, generator=generator())
    refined = make("cem_gradient", iterations=2, refine_steps=20, learning_rate=0.05).optimize(quadratic, generator=generator())
    assert refined.cost < 0.5 * sampled.cost
    assert refined.iterations > sampled.iterations


def test_gradient_shooting_never_touches_the_cost_parameters():
    weight = torch.ones(1, requires_grad=True)
    result = make("gradient", steps=5).optimize(lambda a: weight * quadratic(a), generator=torch.Generator().manual_seed(0))
    assert weight.grad is None and result.iterations == 5


def test_random_shooting_beats_its_start():
    start = torch.zeros(H, A)
    result = make("random", population=2000).optimize(quadratic, initial=start, generator=torch.Generator().manual_seed(0))
    assert result.cost <= float(quadratic(start[None])[0])
    assert result.cost < 0.5 * float(quadratic(torch.zeros(1, H, A))[0])


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_bounds_are_never_violated(name):
    seen = []

    def recording(actions):
        seen.append(actions.clone())
        return ((actions - 5.0) ** 2).sum(dim=(1, 2))  # minimiser far outside the box

    optimizer = make(name)
    result = optimizer.optimize(recording, generator=torch.Generator().manual_seed(0))
    everything = torch.cat([s.reshape(-1, A) for s in seen] + [result.actions])
    assert torch.all(everything >= LOW) and torch.all(everything <= HIGH)
    assert result.cost < float(recording(optimizer.initial()[None])[0])  # moved toward the corner


@pytest.mark.parametrize("name", ["cem", "icem", "mppi", "gradient"])
def test_deadline_stops_after_the_first_iteration(name):
    calls = []

    def counting(actions):
        calls.append(1)
        return quadratic(actions)

    optimizer = make(name, **({"steps": 50} if name == "gradient" else {"iterations": 50}))
    result = optimizer.optimize(counting, deadline=time.perf_counter() - 1.0, generator=torch.Generator().manual_seed(0))
    assert result.iterations <= 1 and result.actions.shape == (H, A)
    unlimited = optimizer.optimize(quadratic, generator=torch.Generator().manual_seed(0))
    assert unlimited.iterations > 1


@pytest.mark.parametrize("name", ["cem", "icem", "mppi"])
def test_no_iteration_starts_that_would_end_past_the_deadline(name, monkeypatch):
    """On a clock that each cost evaluation advances by 20 ms, a deadline 50 ms away
    allows two iterations (ending at 20 and 40 ms); a third would end at 60 ms."""
    from mbrl_control.planning import optimizers

    clock = {"now": 100.0}
    monkeypatch.setattr(optimizers.time, "perf_counter", lambda: clock["now"])

    def slow(actions):
        if len(actions) > 1:  # the population; the final single-row check is not timed
            clock["now"] += 0.020
        return quadratic(actions)

    optimizer = make(name, iterations=50, **({"min_std": 0.0} if name == "cem" else {}))
    result = optimizer.optimize(slow, deadline=100.050, generator=torch.Generator().manual_seed(0))
    assert result.iterations == 2 and clock["now"] <= 100.050


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_same_seed_same_plan(name):
    a = make(name).optimize(quadratic, generator=torch.Generator().manual_seed(3))
    b = make(name).optimize(quadratic, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a.actions, b.actions)


def test_warm_start_shifts_by_one_step_and_helps():
    optimizer = make("cem", iterations=1, population=50, elites=5)
    plan = torch.arange(H * A, dtype=torch.float32).reshape(H, A) / 10
    shifted = optimizer.shift(plan)
    torch.testing.assert_close(shifted[:-1], plan[1:])
    torch.testing.assert_close(shifted[-1], plan[-1])
    generator = torch.Generator().manual_seed(0)
    cold = optimizer.optimize(quadratic, generator=generator)
    warm = optimizer.optimize(quadratic, initial=TARGET, generator=torch.Generator().manual_seed(0))
    assert warm.cost < cold.cost


def test_bad_settings_are_refused():
    with pytest.raises(ConfigError, match="elites = 50: must not exceed population = 10"):
        make("cem", population=10, elites=50)
    with pytest.raises(ConfigError, match="temperature = 0.0: must be > 0"):
        make("mppi", temperature=0.0)
    with pytest.raises(ConfigError, match="refine_candidates = 20: must not exceed elites = 8"):
        make("cem_gradient", refine_candidates=20)
    with pytest.raises(ConfigError, match="ICEMConfig.elites = 50: must not exceed population = 10"):
        make("icem", population=10, elites=50)
    with pytest.raises(ConfigError, match="execute = 'median'"):
        make("icem", execute="median")
    with pytest.raises(ValueError, match="low < high"):
        CEM(H, HIGH, LOW)


def test_colored_noise_has_unit_variance_and_the_spectrum_asked_for():
    white, brown = (colored_noise((4000, 3), 16, beta, torch.Generator().manual_seed(0)) for beta in (0.0, 2.0))
    assert white.shape == (4000, 3, 16)
    for noise in (white, brown):
        assert abs(float(noise.var()) - 1.0) < 0.03
    lag_one = lambda x: float((x[..., 1:] * x[..., :-1]).mean() / x.var())  # noqa: E731
    assert abs(lag_one(white)) < 0.03 and lag_one(brown) > 0.6  # coloured noise: neighbouring steps move together


def test_icem_carries_its_elites_to_the_next_tick_shifted_until_reset():
    seen = []

    def recording(actions):
        seen.append(actions.clone())
        return quadratic(actions)

    optimizer = make("icem", population=40, elites=10, iterations=2, keep_elites=0.5)
    first = optimizer.optimize(recording, generator=torch.Generator().manual_seed(0))
    elites = first.elites
    seen.clear()
    optimizer.optimize(recording, initial=optimizer.shift(first.actions), generator=torch.Generator().manual_seed(1))
    population = seen[0]
    assert len(population) == 40 + 5  # the first iteration's samples and half of the elites, a step on
    torch.testing.assert_close(population[40:, :-1], elites[:5, 1:])
    assert len(seen[1]) == 32 + 5 + 1  # 40 / 1.25 samples, kept elites and the mean
    optimizer.reset()
    seen.clear()
    optimizer.optimize(recording, generator=torch.Generator().manual_seed(1))
    assert len(seen[0]) == 40


def test_icem_needs_fewer_samples_than_cem_on_a_smooth_sequence():
    """A long horizon whose minimiser varies slowly: coloured samples find it with a budget
    that leaves white-noise CEM far off (the 2.7-22x sample savings of Pinneri et al.)."""
    horizon = 30
    target = torch.sin(torch.linspace(0, 3, horizon))[:, None].expand(horizon, A) * 0.8

    def smooth(actions):
        return ((actions - target) ** 2).sum(dim=(1, 2))

    budget = {"population": 40, "elites": 6, "iterations": 4}
    costs = {}
    for name, settings in [("cem", {}), ("icem", {"decay": 1.0})]:
        runs = [make(name, horizon=horizon, **budget, **settings).optimize(smooth, generator=torch.Generator().manual_seed(seed)).cost
                for seed in range(5)]
        costs[name] = sum(runs) / len(runs)
    assert costs["icem"] < 0.5 * costs["cem"], costs


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_scales_its_search_and_still_optimises(name):
    optimizer = OPTIMIZERS[name](6, -torch.ones(2), torch.ones(2))
    assert optimizer.samples, f"{name} names no sequence counts for a time budget to scale"
    optimizer.scale(0.25)
    for field in optimizer.samples:
        assert 1 <= getattr(optimizer.config, field) <= getattr(optimizer.configured, field)
    assert any(getattr(optimizer.config, f) < getattr(optimizer.configured, f) for f in optimizer.samples)
    cost = lambda actions: (actions - 0.5).square().sum((1, 2))  # noqa: E731
    result = optimizer.optimize(cost, generator=torch.Generator().manual_seed(0))
    assert result.cost < float(cost(torch.zeros(1, 6, 2))[0])  # the small search still improves on the centre
    optimizer.scale(1.0)
    assert optimizer.config == optimizer.configured


@pytest.mark.parametrize("name", ["cem", "icem", "cem_gradient"])
def test_a_warm_start_at_a_bound_can_leave_it(name):
    """A plan saturated at -1 (the arm moving at full speed) whose optimum is now 0 inside:
    the search must still sample there. Narrowing the std by the distance to the bound, as
    PETS does, gave it std 0 at -1, and the warm start kept the arm driving off its target."""
    optimizer = make(name, iterations=1)
    result = optimizer.optimize(lambda a: a.square().sum(dim=(1, 2)), initial=-torch.ones(H, A),
                                generator=torch.Generator().manual_seed(0))
    assert result.actions.max() > -0.9 and result.actions.mean() > -0.8, result.actions


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_a_proposal_at_the_optimum_is_the_plan_from_the_first_iteration(name):
    """The policy inside the planner: a proposed sequence that minimises the cost wins
    over whatever one iteration of sampling finds, and a poor proposal does no harm."""
    settings = {"gradient": {"steps": 1}, "cem_gradient": {"refine_steps": 1}}.get(name, {})
    one_iteration = {"iterations": 1} if "iterations" in {f.name for f in dataclasses.fields(OPTIMIZERS[name].Config)} else {}
    result = make(name, **settings, **one_iteration).optimize(quadratic, generator=torch.Generator().manual_seed(0), proposals=TARGET[None])
    torch.testing.assert_close(result.actions, TARGET)
    assert result.cost == pytest.approx(0.0, abs=1e-10)
    assert result.proposed or name == "gradient"  # gradient shooting descends from its candidates, the proposal among them
    plain = make(name, **settings, **one_iteration).optimize(quadratic, generator=torch.Generator().manual_seed(0))
    poor = make(name, **settings, **one_iteration).optimize(quadratic, generator=torch.Generator().manual_seed(0), proposals=-TARGET[None])
    assert poor.cost <= plain.cost + 1e-6 or name in ("mppi",)  # MPPI's average moves with every sample


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_proposals_outside_the_bounds_are_clipped_into_them(name):
    far = 5.0 * torch.randn(3, H, 2, generator=torch.Generator().manual_seed(1))
    seen = []

    def recording(actions):
        seen.append(actions.detach().clone())
        return quadratic(actions)

    result = make(name).optimize(recording, generator=torch.Generator().manual_seed(0), proposals=far)
    for actions in [*seen, result.actions[None]]:
        assert torch.all(actions >= LOW) and torch.all(actions <= HIGH)


def test_batched_cem_solves_each_problem_as_it_would_alone():
    """Many plans in one search (DAgger's labels): each row of the batch has its own
    minimiser, and each is found as well as one search alone finds it."""
    targets = torch.stack([TARGET, -TARGET, 0.5 * TARGET])  # [B, H, A]

    def batched(actions):  # [B, N, H, A] -> [B, N]
        return ((actions - targets[:, None]) ** 2).sum(dim=(-2, -1))

    optimizer = make("cem", iterations=10, population=400, elites=40)
    result = optimizer.optimize(batched, initial=optimizer.initial().expand(3, -1, -1), generator=torch.Generator().manual_seed(0))
    assert result.actions.shape == (3, H, 2) and result.cost.shape == (3,)
    torch.testing.assert_close(result.actions, targets, atol=0.02, rtol=0)
    proposed = optimizer.optimize(batched, initial=optimizer.initial().expand(3, -1, -1), generator=torch.Generator().manual_seed(0),
                                  proposals=torch.stack([targets[0], targets[0], targets[0]])[:, None])
    assert proposed.proposed.tolist() == [True, False, False]  # only the first row's proposal is its optimum
    torch.testing.assert_close(proposed.actions[0], targets[0])
