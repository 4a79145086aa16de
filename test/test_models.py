"""Dynamics models: they learn, know where they have no data, and survive checkpoints."""

import numpy as np
import pytest
import torch

from mbrl_control.checkpoint import CheckpointError
from mbrl_control.config import ConfigError
from mbrl_control.data import TransitionDataset
from mbrl_control.checkpoint import save_torch
from mbrl_control.arm.env import ArmReach
from mbrl_control.loops.mbrl import explore
from mbrl_control.models import EnsembleConfig, load_model, make_model
from mbrl_control.models.ensemble import EnsembleNetwork

NOISE = 0.05
SMALL = {"hidden": 64, "layers": 2, "members": 3}

MODELS = {
    "pe": ("pe", SMALL),
    "mlp": ("mlp", {"hidden": 64, "layers": 2}),
    "gp": ("gp", {}),
    "sparse_gp": ("gp", {"exact_limit": 0, "inducing_points": 32, "sparse_steps": 300}),
}


def system(n: int, seed: int, low: float = -2.0, high: float = 2.0) -> TransitionDataset:
    """s' = s + sin(3s) + a/2 + noise: a noisy 1-D nonlinear system, episodes of 20 steps."""
    rng = np.random.default_rng(seed)
    s = rng.uniform(low, high, size=(n, 1))
    a = rng.uniform(-1, 1, size=(n, 1))
    data = TransitionDataset(obs_dim=1, act_dim=1)
    data.append(s, a, s + np.sin(3 * s) + 0.5 * a + NOISE * rng.standard_normal((n, 1)), episode=np.arange(n) // 20)
    return data


def held_out_mse(model, data: TransitionDataset) -> float:
    with torch.no_grad():
        mean = model.predict(torch.as_tensor(data.obs), torch.as_tensor(data.act)).mean
    return float(((mean.double().numpy() - data.next_obs) ** 2).mean())


@pytest.fixture(scope="module")
def test_data():
    return system(400, seed=99)


@pytest.mark.parametrize(
    "key, sizes",
    [("pe", (100, 1000)), ("mlp", (100, 1000)), ("gp", (20, 200)), ("sparse_gp", (20, 500))],
)
def test_held_out_error_falls_with_data(key, sizes, test_data):
    name, overrides = MODELS[key]
    errors = []
    for n in sizes:
        model = make_model(name, 1, 1, **overrides)
        report = model.fit(system(n, seed=1))
        assert report.epochs > 0 and len(report.train_loss) > 0 and report.train_size > 0
        errors.append(held_out_mse(model, test_data))
    assert errors[1] < 0.5 * errors[0], errors
    assert errors[1] < 10 * NOISE**2, errors  # near the noise floor (0.0025), far below Var[sin 3s] ≈ 0.5


@pytest.mark.parametrize("key", ["pe", "gp"])
def test_epistemic_variance_grows_away_from_the_data(key):
    name, overrides = MODELS[key]
    model = make_model(name, 1, 1, **overrides)
    model.fit(system(400, seed=2, low=-1.0, high=1.0))
    with torch.no_grad():
        near = model.predict(torch.linspace(-0.9, 0.9, 50)[:, None], torch.zeros(50, 1))
        far = model.predict(torch.linspace(2.5, 3.5, 50)[:, None], torch.zeros(50, 1))
    assert far.epistemic.mean() > 5 * near.epistemic.mean()
    torch.testing.assert_close(near.var, near.aleatoric + near.epistemic)
    # on the data the aleatoric part is the system's noise, to within a factor of three
    assert NOISE**2 / 3 < near.aleatoric.mean().item() < 3 * NOISE**2


def test_vectorised_ensemble_equals_members_one_by_one():
    net = EnsembleNetwork(EnsembleConfig(members=5, hidden=16, layers=3, probabilistic=True), 6, 4)
    x = torch.randn(7, 6)
    mean, logvar = net(x.expand(5, 7, 6))
    for e in range(5):
        h = x
        for layer in net.hidden:
            h = net.activation(h @ layer.weight[e] + layer.bias[e, 0])
        out = h @ net.head.weight[e] + net.head.bias[e, 0]
        mean_e, raw_logvar_e = out.chunk(2, dim=-1)
        logvar_e = net.max_logvar[0] - torch.nn.functional.softplus(net.max_logvar[0] - raw_logvar_e)
        logvar_e = net.min_logvar[0] + torch.nn.functional.softplus(logvar_e - net.min_logvar[0])
        torch.testing.assert_close(mean[e], mean_e, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(logvar[e], logvar_e, rtol=1e-5, atol=1e-6)


def test_log_variance_stays_within_learned_bounds():
    net = EnsembleNetwork(EnsembleConfig(**SMALL), 2, 1)
    with torch.no_grad():
        _, logvar = net(torch.full((3, 4, 2), 1e3))
    # soft bounds: exceeded at most by softplus(-(max - min)) ≈ 3e-5
    assert torch.all(logvar <= net.max_logvar + 1e-4)
    assert torch.all(logvar >= net.min_logvar - 1e-4)


def test_samples_follow_the_predictive_distribution():
    model = make_model("pe", 1, 1, **SMALL)
    model.fit(system(600, seed=3))
    obs, act = torch.full((19998, 1), 0.3), torch.zeros(19998, 1)  # member-major: a multiple of E = 3
    with torch.no_grad():
        draws = model.sample(obs, act, generator=torch.Generator().manual_seed(0))
        prediction = model.predict(obs[:1], act[:1])
        one_member = model.sample(obs[:5], act[:5], members=torch.zeros(5, dtype=torch.long))
    assert abs(draws.mean() - prediction.mean[0, 0]) < 0.01
    assert abs(draws.var() / prediction.var[0, 0] - 1) < 0.1
    assert one_member.shape == (5, 1)


@pytest.mark.parametrize("key", list(MODELS))
def test_save_load_gives_identical_predictions(key, tmp_path):
    name, overrides = MODELS[key]
    model = make_model(name, 1, 1, **overrides)
    model.fit(system(300, seed=4))
    path = model.save(tmp_path / "model.pt")
    loaded = load_model(path, obs_dim=1, act_dim=1)
    assert loaded.name == model.name and loaded.config == model.config and loaded.dataset_size == 300
    obs, act = torch.linspace(-2, 2, 64)[:, None], torch.rand(64, 1)
    with torch.no_grad():
        a, b = model.predict(obs, act), loaded.predict(obs, act)
    torch.testing.assert_close(a.mean, b.mean)
    torch.testing.assert_close(a.var, b.var)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    model = make_model("pe", 1, 1, **SMALL, max_epochs=2)
    model.fit(system(100, seed=5))
    return model.save(tmp_path_factory.mktemp("ckpt") / "model.pt")


def test_truncated_checkpoint_is_refused_clearly(checkpoint, tmp_path):
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(checkpoint.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=f"{truncated}: unreadable checkpoint"):
        load_model(truncated)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_model(tmp_path / "missing.pt")


def test_checkpoint_for_other_dims_or_type_is_refused(checkpoint, tmp_path):
    with pytest.raises(CheckpointError, match="obs_dim=1, act_dim=1, but this system has obs_dim=16, act_dim=5"):
        load_model(checkpoint, obs_dim=16, act_dim=5)
    payload = torch.load(checkpoint, weights_only=True)
    foreign = save_torch({**payload, "kind": "mbrl_control.model.svm"}, tmp_path / "svm.pt")
    with pytest.raises(CheckpointError, match="unknown model type 'svm'"):
        load_model(foreign)


def test_bad_inputs_are_refused_with_the_reason():
    model = make_model("pe", 1, 1, **SMALL, max_epochs=2)
    with pytest.raises(RuntimeError, match="not been fitted"):
        model.predict(torch.zeros(1, 1), torch.zeros(1, 1))
    model.fit(system(100, seed=6))
    with pytest.raises(ValueError, match=r"NaN/inf in row\(s\) \[1\]"):
        model.predict(torch.tensor([[0.0], [float("nan")]]), torch.zeros(2, 1))
    with pytest.raises(ValueError, match="input has obs_dim=2"):
        model.predict(torch.zeros(3, 2), torch.zeros(3, 1))
    with pytest.raises(ValueError, match="same B"):
        model.predict(torch.zeros(3, 1), torch.zeros(2, 1))
    with pytest.raises(ValueError, match="dataset has obs_dim=3"):
        model.fit(TransitionDataset(3, 2))


def test_bad_settings_are_refused():
    with pytest.raises(ConfigError, match="members = 0: must be >= 1"):
        make_model("pe", 1, 1, members=0)
    with pytest.raises(ConfigError, match="kernel = 'cubic': must be one of 'rbf', 'matern52'"):
        make_model("gp", 1, 1, kernel="cubic")
    with pytest.raises(ValueError, match="unknown model 'svm'"):
        make_model("svm", 1, 1)


def test_large_data_switches_to_the_sparse_gp():
    model = make_model("gp", 1, 1, exact_limit=150, inducing_points=16, sparse_steps=50)
    model.fit(system(100, seed=7))
    assert not model.regressor.sparse
    model.fit(system(300, seed=7))
    assert model.regressor.sparse and "sparse" in model.fit(system(300, seed=8)).notes


def test_the_gp_posterior_keeps_spread_rows_and_drops_repeats():
    """An arm holding still repeats one transition: beyond posterior_points the exact GP
    conditions on rows spread over the inputs, so its predictions barely change and the
    repeats go."""
    from mbrl_control.models.gp import spread_subset

    z = torch.cat([torch.linspace(-1, 1, 50)[:, None], torch.zeros(200, 1) + 0.31])  # 50 spread, 200 repeats
    kept = spread_subset(z, 60)
    assert len(set(kept.tolist())) == 60 and (kept < 50).sum() == 50  # every spread row, and some of the repeats
    data = system(200, seed=7)
    still = TransitionDataset(obs_dim=1, act_dim=1)
    still.append(np.repeat(data.obs[:1], 300, 0), np.repeat(data.act[:1], 300, 0), np.repeat(data.next_obs[:1], 300, 0), episode=99)
    both = TransitionDataset(obs_dim=1, act_dim=1)
    both.append(np.vstack([data.obs, still.obs]), np.vstack([data.act, still.act]), np.vstack([data.next_obs, still.next_obs]),
                episode=np.concatenate([data.episode, still.episode]))
    bounded = make_model("gp", 1, 1, posterior_points=250)
    report = bounded.fit(both)
    assert bounded.regressor.gp.train_inputs[0].shape[-2] == 250 and "posterior on 250 rows" in report.notes
    full = make_model("gp", 1, 1, posterior_points=1000)
    full.fit(both)
    obs, act = torch.linspace(-1, 1, 20)[:, None], torch.zeros(20, 1)
    with torch.no_grad():
        gap = (bounded.predict(obs, act).mean - full.predict(obs, act).mean).abs().max()
    assert gap < 0.05, gap


@pytest.mark.parametrize("key", ["pe", "gp"])
def test_goal_entries_are_carried_through_and_ignored(key):
    """obs = [s, goal]: the goal never moves and must not change the predicted dynamics."""
    inner = system(300, seed=3)
    rng = np.random.default_rng(4)
    goal = np.repeat(rng.uniform(-1, 1, (15, 1)), 20, axis=0)  # one goal per episode
    data = TransitionDataset(obs_dim=2, act_dim=1)
    data.append(np.hstack([inner.obs, goal]), inner.act, np.hstack([inner.next_obs, goal]), episode=inner.episode)
    name, overrides = MODELS[key]
    model = make_model(name, 2, 1, goal_dims=1, **overrides)
    model.fit(data)
    obs, act = torch.tensor([[0.3, -0.5], [0.3, 0.9]]), torch.tensor([[0.2], [0.2]])
    with torch.no_grad():
        prediction = model.predict(obs, act)
        sample = model.sample(obs.repeat(3, 1)[: len(obs) * (3 if key == "pe" else 1)],
                              act.repeat(3, 1)[: len(obs) * (3 if key == "pe" else 1)])
    torch.testing.assert_close(prediction.mean[:, 1], obs[:, 1])  # the goal stays, exactly
    assert torch.all(prediction.var[:, 1] == 0)
    torch.testing.assert_close(sample[:, 1], obs.repeat(3, 1)[: len(sample), 1])
    torch.testing.assert_close(prediction.mean[0, 0], prediction.mean[1, 0], atol=1e-4, rtol=0)  # goal is no input
    with pytest.raises(ConfigError, match="goal_dims = 2: must be less than obs_dim = 2"):
        make_model(name, 2, 1, goal_dims=2)


@pytest.mark.parametrize("key", ["pe", "gp", "sparse_gp"])
def test_planning_mean_is_the_predictive_mean(key):
    name, overrides = MODELS[key]
    model = make_model(name, 1, 1, **overrides)
    model.fit(system(200, seed=5))
    obs, act = torch.linspace(-2, 2, 40)[:, None], torch.linspace(-1, 1, 40)[:, None]
    with torch.no_grad():  # float32: both are within ~1e-4 of a float64 evaluation, not of each other's rounding
        torch.testing.assert_close(model.predict_mean(obs, act), model.predict(obs, act).mean, atol=5e-4, rtol=1e-4)


@pytest.mark.parametrize("kernel", ["rbf", "matern52"])
def test_the_gp_planning_mean_matches_gpytorch_for_several_outputs(kernel):
    """The exact GP's planning mean (closed-form RBF, or gpytorch's kernel) equals the
    predictive mean on a system with several state dimensions and a goal."""
    from mbrl_control.data.transitions import TransitionDataset

    rng = np.random.default_rng(3)
    obs, act = rng.normal(size=(150, 5)), rng.uniform(-1, 1, size=(150, 2))
    next_obs = obs.copy()
    next_obs[:, :3] += 0.1 * np.tanh(obs[:, :3] @ rng.normal(size=(3, 3))) + 0.05 * act @ rng.normal(size=(2, 3))
    data = TransitionDataset(5, 2)
    data.append(obs, act, next_obs, episode=0)
    model = make_model("gp", 5, 2, goal_dims=2, kernel=kernel, iterations=20)
    model.fit(data)
    x_obs, x_act = torch.as_tensor(rng.normal(size=(70, 5)), dtype=torch.float32), torch.rand(70, 2) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(model.predict_mean(x_obs, x_act), model.predict(x_obs, x_act).mean, atol=5e-4, rtol=1e-4)


def latency_arm_data(episodes: int, seed: int, latency: int = 2) -> TransitionDataset:
    """ArmReach under random actions, its servos acting ``latency`` ticks late."""
    import gymnasium as gym

    from mbrl_control import ENV_ID

    env = gym.make(ENV_ID, action_latency=latency)
    rng = np.random.default_rng(seed)
    data = TransitionDataset(16, 5)
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        for _ in range(100):
            action = rng.uniform(-1, 1, 5)
            next_obs, *_ = env.step(action)
            data.append(obs, action, next_obs, episode=episode)
            obs = next_obs
    return data


def test_history_lets_a_model_predict_an_arm_whose_servos_act_late():
    from mbrl_control.arm.interface import ArmInterface
    from mbrl_control.arm.reach import ReachConfig
    from mbrl_control.arm.sim import SimConfig

    arm = ArmInterface.from_configs(SimConfig(), ReachConfig())
    train, test = latency_arm_data(3, seed=0), latency_arm_data(2, seed=100)
    joints = slice(0, 5)
    errors = {}
    for history in (0, 2):
        model = make_model("gp", 16, 5, derive=arm.derive, **arm.MODEL_LAYOUT, history=history, iterations=50)
        model.fit(train)
        with torch.no_grad():
            mean = model.predict(*model.inputs(test)).mean.double().numpy()
        errors[history] = float(((mean[:, joints] - test.next_obs[:, joints]) ** 2).mean())
    moved = float(((test.next_obs[:, joints] - test.obs[:, joints]) ** 2).mean())
    assert errors[2] < 0.2 * errors[0], errors  # the actions in flight decide where the joints go
    assert errors[2] < 0.05 * moved, (errors, moved)


def test_derived_entries_are_computed_not_learned(tmp_path):
    """obs = [s, s², goal]: the middle entry is derived (s²), exactly, with the linearised variance."""
    inner = system(300, seed=3)
    data = TransitionDataset(obs_dim=3, act_dim=1)
    goal = np.full((300, 1), 0.7)
    data.append(np.hstack([inner.obs, inner.obs**2, goal]), inner.act, np.hstack([inner.next_obs, inner.next_obs**2, goal]),
                episode=inner.episode)
    square = lambda state: state[..., :1] ** 2  # noqa: E731
    model = make_model("pe", 3, 1, derive=square, goal_dims=1, derived_dims=1, **SMALL)
    model.fit(data)
    obs, act = torch.tensor([[0.3, 0.09, 0.7], [-1.0, 1.0, 0.7]]), torch.tensor([[0.2], [-0.5]])
    with torch.no_grad():
        prediction = model.predict(obs, act)
    torch.testing.assert_close(prediction.mean[:, 1], prediction.mean[:, 0] ** 2)
    torch.testing.assert_close(prediction.var[:, 1], (2 * prediction.mean[:, 0]) ** 2 * prediction.var[:, 0])
    torch.testing.assert_close(prediction.mean[:, 2], obs[:, 2])
    without = load_model(model.save(tmp_path / "model.pt"), 3, 1)
    with pytest.raises(RuntimeError, match=r"derived_dims = 1: observation entries 1-1 are computed by the task's derive"):
        without.predict(obs, act)


@pytest.mark.parametrize("key", ["pe", "gp"])
def test_bounds_hold_predictions_where_the_system_stops(key, tmp_path):
    """s' = min(s + a/2, 1): a joint against its limit, seen in the data only from below. The
    model extrapolates motion past the limit without bounds; with them no query leaves
    them, pushing at the limit has no gradient, and a checkpoint keeps them."""
    rng = np.random.default_rng(0)
    s, a = rng.uniform(-1, 0.8, size=(300, 1)), rng.uniform(-1, 1, size=(300, 1))
    data = TransitionDataset(obs_dim=1, act_dim=1)
    data.append(s, a, np.minimum(s + 0.5 * a, 1.0), episode=np.arange(300) // 20)
    name, overrides = MODELS[key]
    free, bounded = make_model(name, 1, 1, **overrides), make_model(name, 1, 1, bounds=([-1.0], [1.0]), **overrides)
    free.fit(data), bounded.fit(data)
    at_limit, push = torch.ones(64, 1), torch.ones(64, 1, requires_grad=True)
    with torch.no_grad():
        assert free.predict_mean(at_limit, push).mean() > 1.2  # motion that never comes
        for model in (bounded, load_model(bounded.save(tmp_path / "model.pt"), 1, 1)):
            for next_obs in (model.predict(at_limit, push).mean, model.predict_mean(at_limit, push),
                             model.sample(at_limit, push, noise=torch.randn(64, 1) * 3,
                                          members=torch.zeros(64, dtype=torch.long))):
                assert next_obs.max() <= 1.0 and next_obs.min() >= -1.0
    (gradient,) = torch.autograd.grad(bounded.predict_mean(at_limit, push).sum(), push)
    assert torch.all(gradient == 0)
    for bad, reason in ((([-1.0, 0.0], [1.0, 1.0]), r"two arrays of the 1 learned entries"),
                        (([1.0], [-1.0]), r"entries \[0\] are NaN or have low > high"),
                        (([float("nan")], [1.0]), r"NaN or have low > high")):
        with pytest.raises(ValueError, match=reason):
            make_model(name, 1, 1, bounds=bad, **overrides)


def test_a_new_model_is_one_small_class(tmp_path):
    """A least-squares linear model, registered by defining it, works behind make_model,
    save and load like the built-in ones."""
    from dataclasses import dataclass

    from mbrl_control.config import param
    from mbrl_control.models import REGRESSORS, FitReport, ModelConfig, Regressor

    @dataclass(frozen=True)
    class LinearConfig(ModelConfig):
        ridge: float = param(1e-6, "L2 penalty.", low=0.0)

    class Linear(Regressor):
        name = "test_linear"
        Config = LinearConfig

        def __init__(self, in_dim, out_dim, config):
            super().__init__(in_dim, out_dim, config)
            self.register_buffer("weight", torch.zeros(in_dim + 1, out_dim))

        def fit(self, x, y, x_val, y_val, warm_start):
            features = torch.cat([x, torch.ones(len(x), 1)], 1)
            gram = features.T @ features + self.config.ridge * torch.eye(features.shape[1])
            self.weight = torch.linalg.solve(gram, features.T @ y)
            return FitReport(epochs=1)

        def forward(self, x, variance=True):
            mean = torch.cat([x, torch.ones(*x.shape[:-1], 1)], -1) @ self.weight
            return mean, torch.zeros_like(mean), torch.zeros_like(mean)

    try:
        rng = np.random.default_rng(0)
        s, a = rng.normal(size=(200, 2)), rng.normal(size=(200, 1))
        data = TransitionDataset(2, 1)
        data.append(s, a, s + 0.5 * a - 0.1 * s, episode=0)
        model = make_model("test_linear", 2, 1, history=0)
        model.fit(data)
        obs, act = torch.tensor([[1.0, -2.0]]), torch.tensor([[0.4]])
        expected = obs + 0.5 * act - 0.1 * obs
        torch.testing.assert_close(model.predict(obs, act).mean, expected, atol=1e-4, rtol=0)
        loaded = load_model(model.save(tmp_path / "model.pt"))
        torch.testing.assert_close(loaded.predict_mean(obs, act), expected, atol=1e-4, rtol=0)
    finally:
        REGRESSORS.pop("test_linear")


def test_a_warm_refit_starts_where_the_last_fit_ended():
    first, more = system(300, seed=1), system(400, seed=2)
    both = TransitionDataset(1, 1)
    for part in (first, more):
        both.append(part.obs, part.act, part.next_obs, episode=part.episode + 100 * (part is more))
    curves = {}
    for warm in (False, True):
        model = make_model("pe", 1, 1, **SMALL, warm_start=warm, max_epochs=40)
        model.fit(first)
        curves[warm] = model.fit(both).train_loss
    assert curves[True][0] < curves[False][0] - 0.5, (curves[True][:3], curves[False][:3])  # far lower from the first epoch


@pytest.mark.parametrize("kind", ["ensemble", "gp"])
def test_a_fit_in_progress_stops_when_cancelled_and_the_model_before_it_stays(kind, tmp_path):
    """A node shutting down mid-fit: the fit stops within a second, the copy it worked on is
    dropped, and the last good model (and its checkpoint) is as it was."""
    import threading
    import time

    from mbrl_control.models import FitCancelled, cancellable

    env = ArmReach()
    data = explore(env, episodes=4)
    env.close()
    overrides = {"max_epochs": 10_000, "patience": 10_000, "max_steps": 10_000_000} if kind == "ensemble" else {"iterations": 10_000}
    last = make_model(kind, 16, 5, goal_dims=3, **({"max_epochs": 5} if kind == "ensemble" else {"iterations": 5}))
    last.fit(data)
    path = last.save(tmp_path / "model.pt")
    model = make_model(kind, 16, 5, goal_dims=3, **overrides)
    stop, outcome = threading.Event(), {}

    def fit() -> None:
        try:
            with cancellable(stop):
                model.fit(data)
        except FitCancelled as err:
            outcome["cancelled"] = err

    thread = threading.Thread(target=fit)
    thread.start()
    time.sleep(1.0)
    stop.set()
    thread.join(timeout=5.0)
    assert not thread.is_alive() and "cancelled" in outcome
    assert load_model(path, 16, 5).dataset_size == len(data)
    with cancellable(threading.Event()):  # not set: fits run as usual
        assert last.copy().fit(data).epochs >= 1


@pytest.mark.parametrize("key", ["pe", "gp"])
def test_a_time_limited_fit_ends_early_with_a_usable_model_and_says_so(key):
    from mbrl_control.models import time_limited

    name, overrides = MODELS[key]
    data = system(300, seed=5)
    model = make_model(name, 1, 1, **{**overrides, "patience": 10_000} if key == "pe" else overrides)
    with time_limited(1e-9):  # gone before the first epoch ends: exactly one epoch (one GP iteration) runs
        report = model.fit(data)
    assert report.timed_out and "time limit" in report.notes and report.epochs == 1
    obs, act = torch.zeros(4, 1), torch.zeros(4, 1)
    with torch.no_grad():
        assert torch.isfinite(model.predict(obs, act).mean).all()
    unlimited = model.fit(data)  # outside the block: no limit, and the warm start continues
    assert not unlimited.timed_out and unlimited.epochs > 1


def _saved_as_on_a_gpu(model, path):
    """``model`` saved with every tensor's storage tagged ``cuda:0``, as torch records a
    tensor that lives on a GPU (a high-priority location tagger, for this save only)."""
    from torch import serialization

    tag_as_gpu = (-10_000, lambda storage: "cuda:0", lambda storage, location: None)
    serialization._package_registry.insert(0, tag_as_gpu)
    try:
        return model.save(path)
    finally:
        serialization._package_registry.remove(tag_as_gpu)


def test_a_checkpoint_from_a_gpu_fit_loads_on_a_cpu_only_planner(checkpoint, tmp_path):
    on_gpu = _saved_as_on_a_gpu(load_model(checkpoint), tmp_path / "gpu.pt")
    if not torch.cuda.is_available():  # the simulation is real: torch's default load would fail here
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(on_gpu, weights_only=True)
    model, reference = load_model(on_gpu, obs_dim=1, act_dim=1), load_model(checkpoint, obs_dim=1, act_dim=1)
    obs, act = torch.linspace(-2, 2, 16)[:, None], torch.zeros(16, 1)
    with torch.no_grad():
        torch.testing.assert_close(model.predict(obs, act).mean, reference.predict(obs, act).mean)
    assert all(p.device.type == "cpu" for p in model.regressor.parameters())


@pytest.mark.parametrize("name", ["pe", "gp"])
def test_device_auto_fits_on_the_cpu_where_there_is_no_gpu_and_cuda_is_refused(name, monkeypatch):
    """``auto`` where CUDA is missing fits on the CPU, the same model as ``cpu``; ``cuda``
    is refused with the reason; the fitted model is on the CPU either way."""
    from mbrl_control.devices import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    overrides = SMALL if name == "pe" else {"iterations": 20}
    data = system(200, seed=7)
    models = {device: make_model(name, 1, 1, **overrides, device=device) for device in ("cpu", "auto")}
    for model in models.values():
        model.fit(data)
    obs, act = torch.linspace(-2, 2, 16)[:, None], torch.zeros(16, 1)
    with torch.no_grad():
        torch.testing.assert_close(models["auto"].predict(obs, act).mean, models["cpu"].predict(obs, act).mean)
    assert all(p.device.type == "cpu" for p in models["auto"].regressor.parameters())
    assert resolve_device("auto") == (torch.device("cpu"), "device auto: no CUDA device here, so on the CPU")
    with pytest.raises(ConfigError, match="device = 'cuda'.*no CUDA device"):
        make_model(name, 1, 1, **overrides, device="cuda").fit(data)
