"""Policy gradient: estimators against known gradients, advantages against their
definitions, the trust-region machinery against explicit matrices, and learning."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch.distributions import AffineTransform, Normal, TanhTransform, TransformedDistribution

from mbrl_control.config import ConfigError
from mbrl_control.policies import GaussianPolicy, train_policy
from mbrl_control.policies.advantages import gae, n_step_advantages, reward_to_go, total_return
from mbrl_control.policies.learner import gaussian_kl
from mbrl_control.policies.networks import RunningNormalizer
from mbrl_control.policies.ppo import clipped_surrogate, update_beta
from mbrl_control.policies.reinforce import reinforce_gradient
from mbrl_control.policies.trust_region import conjugate_gradient, fisher_vector_product


# -- REINFORCE on a Gaussian bandit ------------------------------------------------------------
def bandit_estimates(baseline: str, batches=300, batch=32):
    """REINFORCE estimates of ∂J/∂μ and ∂J/∂log σ for J = E[-(a - 2)²], a ~ N(μ=0, σ=1):
    the true values are -2(μ - 2) = 4 and -2σ² = -2."""
    torch.manual_seed(0)
    policy = GaussianPolicy(1, np.array([-10.0]), np.array([10.0]), hidden=(4,))
    obs = torch.zeros(batch, 1)
    estimates = []
    for _ in range(batches):
        raw = torch.randn(batch, 1)
        returns = -((raw[:, 0] - 2.0) ** 2)
        g = reinforce_gradient(policy, obs, raw, returns, baseline)
        estimates.append([g["net.2.bias"].item(), g["log_std"].item()])
    return np.array(estimates)  # [batches, 2]


def test_reinforce_is_unbiased_and_baselines_lower_its_variance():
    truth = np.array([4.0, -2.0])
    results = {b: bandit_estimates(b) for b in ("none", "mean", "optimal")}
    for baseline, est in results.items():
        standard_error = est.std(0) / np.sqrt(len(est))
        assert np.all(np.abs(est.mean(0) - truth) < 4 * standard_error + 0.05), (baseline, est.mean(0))
    var = {b: est.var(0) for b, est in results.items()}
    assert np.all(var["mean"] < 0.8 * var["none"]), var
    assert np.all(var["optimal"] <= var["mean"] * 1.05), var


# -- returns and advantages ----------------------------------------------------------------------
@pytest.fixture
def rollout():
    g = torch.Generator().manual_seed(1)
    T, N = 12, 3
    rewards, values, next_values = torch.randn(T, N, generator=g), torch.randn(T, N, generator=g), torch.randn(T, N, generator=g)
    terminated = torch.zeros(T, N, dtype=torch.bool)
    truncated = torch.zeros(T, N, dtype=torch.bool)
    terminated[3, 0] = terminated[7, 1] = True
    truncated[5, 2] = truncated[9, 0] = True
    ends = terminated | truncated
    # within an episode the next state's value is the next step's: V(s_{t+1})
    next_values[:-1] = torch.where(ends[:-1], next_values[:-1], values[1:])
    return rewards, values, next_values, terminated, ends


def monte_carlo(rewards, next_values, terminated, ends, gamma):
    """G_t by its definition, step by step to the end of the episode or the batch."""
    T, N = rewards.shape
    G = torch.zeros(T, N)
    for n in range(N):
        for t in range(T):
            total, k = 0.0, t
            while True:
                total += gamma ** (k - t) * rewards[k, n].item()
                if ends[k, n] or k == T - 1:
                    if not terminated[k, n]:
                        total += gamma ** (k - t + 1) * next_values[k, n].item()
                    break
                k += 1
            G[t, n] = total
    return G


def test_gae_with_lambda_one_is_the_monte_carlo_advantage(rollout):
    rewards, values, next_values, terminated, ends = rollout
    expected = monte_carlo(rewards, next_values, terminated, ends, 0.9) - values
    torch.testing.assert_close(gae(rewards, values, next_values, terminated, ends, 0.9, 1.0), expected)
    torch.testing.assert_close(reward_to_go(rewards, terminated, ends, 0.9, next_values) - values, expected)
    torch.testing.assert_close(n_step_advantages(rewards, values, next_values, terminated, ends, 0.9, 100), expected)


def test_gae_with_lambda_zero_is_the_td_error(rollout):
    rewards, values, next_values, terminated, ends = rollout
    td = rewards + 0.9 * torch.where(terminated, 0.0, next_values) - values
    torch.testing.assert_close(gae(rewards, values, next_values, terminated, ends, 0.9, 0.0), td)
    torch.testing.assert_close(n_step_advantages(rewards, values, next_values, terminated, ends, 0.9, 1), td)


def test_total_return_gives_every_step_its_episodes_return(rollout):
    rewards, _, _, terminated, ends = rollout
    returns = total_return(rewards, terminated, ends, 1.0)
    # env 0: episodes [0..3], [4..9], [10..11]
    for first, last in ((0, 3), (4, 9), (10, 11)):
        torch.testing.assert_close(returns[first : last + 1, 0], rewards[first : last + 1, 0].sum().expand(last - first + 1))


# -- trust region ---------------------------------------------------------------------------------
def test_conjugate_gradient_solves_an_spd_system():
    g = torch.Generator().manual_seed(0)
    M = torch.randn(8, 8, generator=g, dtype=torch.float64)
    A = M @ M.T + 0.5 * torch.eye(8, dtype=torch.float64)
    b = torch.randn(8, generator=g, dtype=torch.float64)
    x = conjugate_gradient(lambda v: A @ v, b, iterations=30)
    torch.testing.assert_close(x, torch.linalg.solve(A, b))


def test_fisher_vector_product_matches_the_explicit_fisher_matrix():
    """F = E_s[J_μᵀ diag(1/σ²) J_μ + J_logσᵀ diag(2) J_logσ], the Gaussian's Fisher
    information pulled back through the network, built row by row."""
    torch.manual_seed(0)
    policy = GaussianPolicy(2, np.array([-1.0, -1.0]), np.array([1.0, 1.0]), hidden=(3,), log_std_init=-0.5).double()
    obs = torch.randn(5, 2, dtype=torch.float64)
    params = list(policy.parameters())
    with torch.no_grad():
        dist = policy.distribution(obs)
    Fv = fisher_vector_product(policy, obs, dist.mean, dist.stddev)

    def flat_jacobian(output):
        rows = [torch.cat([g.flatten() for g in torch.autograd.grad(o, params, retain_graph=True, allow_unused=True, materialize_grads=True)]) for o in output]
        return torch.stack(rows)

    F = 0
    for s in obs:
        d = policy.distribution(s[None])
        J_mu, J_log_std = flat_jacobian(d.mean[0]), flat_jacobian(d.stddev.log()[0])
        F = F + J_mu.T @ torch.diag(1 / d.stddev[0].detach() ** 2) @ J_mu + 2 * J_log_std.T @ J_log_std
    F = F / len(obs)
    v = torch.randn(F.shape[0], dtype=torch.float64)
    torch.testing.assert_close(Fv(v), F @ v)


# -- PPO -------------------------------------------------------------------------------------------
def test_clipped_objective_by_hand():
    ratio = torch.tensor([0.5, 0.9, 1.1, 1.5, 1.5, 0.5])
    advantages = torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0, -1.0])
    # min(r·A, clip(r, 0.8, 1.2)·A) row by row
    expected = torch.tensor([0.5, -0.9, 1.1, -1.5, 1.2, -0.8])
    torch.testing.assert_close(clipped_surrogate(ratio, advantages, 0.2), expected)


def test_kl_penalty_dual_update():
    assert update_beta(1.0, kl=0.03, target_kl=0.01) == 2.0
    assert update_beta(1.0, kl=0.005, target_kl=0.01) == 0.5
    assert update_beta(1.0, kl=0.012, target_kl=0.01) == 1.0


# -- policy distribution ---------------------------------------------------------------------------
def test_squashed_log_prob_is_the_change_of_variables_density():
    torch.manual_seed(0)
    low, high = np.array([-2.0, 0.0]), np.array([2.0, 1.0])
    policy = GaussianPolicy(3, low, high, hidden=(8,), squash=True, log_std_init=0.3)
    obs, raw = torch.randn(16, 3), 1.5 * torch.randn(16, 2)
    dist = policy.distribution(obs)
    lo, hi = torch.tensor(low, dtype=torch.float32), torch.tensor(high, dtype=torch.float32)
    reference = TransformedDistribution(Normal(dist.mean, dist.stddev), [TanhTransform(), AffineTransform((lo + hi) / 2, (hi - lo) / 2)])
    actions = policy.to_env(raw)
    assert torch.all(actions >= lo) and torch.all(actions <= hi)
    torch.testing.assert_close(policy.log_prob(obs, raw), reference.log_prob(actions).sum(-1), atol=2e-3, rtol=1e-3)
    torch.testing.assert_close(policy.from_env(actions), raw, atol=2e-3, rtol=1e-3)
    far = policy.to_env(torch.full((1, 2), 30.0))  # saturated: still inside the bounds, finite log-prob
    assert torch.all(far <= hi) and torch.isfinite(policy.log_prob(obs[:1], torch.full((1, 2), 30.0))).all()


def test_gaussian_kl_is_zero_for_itself_and_positive_otherwise():
    new = Normal(torch.zeros(4, 2), torch.ones(4, 2))
    assert torch.allclose(gaussian_kl(torch.zeros(4, 2), torch.ones(4, 2), new), torch.zeros(4))
    assert torch.all(gaussian_kl(torch.ones(4, 2), torch.ones(4, 2), new) > 0)


def test_relative_goal_gives_both_networks_the_goal_difference():
    from mbrl_control.policies.networks import ValueNetwork

    torch.manual_seed(0)
    obs = torch.randn(50, 8) * torch.arange(1.0, 9.0)  # [..., achieved (3), goal (3)]
    policy = GaussianPolicy(8, -np.ones(2), np.ones(2), hidden=(4,), relative_goal=3)
    policy.update_obs_stats(obs)
    delta = obs[:, 5:] - obs[:, 2:5]
    features = torch.cat([obs, delta, delta / (delta.norm(dim=1, keepdim=True) + 0.005)], dim=1)
    assert policy.net[0].in_features == 14
    torch.testing.assert_close(policy.obs_norm.mean, features.double().mean(0))
    torch.testing.assert_close(policy.inputs(obs), (features - features.mean(0)) / features.std(0, unbiased=False), atol=1e-4, rtol=1e-4)
    with torch.no_grad():  # the deployed path is the distribution's mean
        np.testing.assert_allclose(policy.act(obs.numpy()), policy.to_env(policy.distribution(obs).mean).numpy(), atol=1e-6)
    value = ValueNetwork(policy, hidden=(4,))
    torch.testing.assert_close(value(obs), value.net(policy.inputs(obs)).squeeze(-1))
    with pytest.raises(ValueError, match="relative_goal = 5: needs 0 <= 2·relative_goal <= obs_dim = 8"):
        GaussianPolicy(8, -np.ones(2), np.ones(2), relative_goal=5)


@pytest.mark.parametrize("activation", ["tanh", "relu", "silu", "elu"])
@pytest.mark.parametrize("squash, state_dependent_std, relative_goal, members", [(False, False, 0, 1), (True, True, 3, 3)])
def test_the_deployed_policy_acts_as_the_torch_policy(activation, squash, state_dependent_std, relative_goal, members):
    """The numpy snapshot gives ``policy.act``'s actions (of one network, or the mean of
    several), inside the bounds, refuses wrongly sized observations, and does not follow
    later training."""
    from mbrl_control.policies.deployed import DeployedPolicy

    torch.manual_seed(0)
    obs = torch.randn(64, 8) * torch.arange(1.0, 9.0) + 2.0
    low, high = -np.linspace(0.5, 1.0, 3), np.linspace(0.2, 2.0, 3)
    policy = GaussianPolicy(8, low, high, hidden=(32, 32), activation=activation, squash=squash,
                            state_dependent_std=state_dependent_std, relative_goal=relative_goal, members=members)
    policy.update_obs_stats(obs)
    with torch.no_grad():  # weights of a trained policy's size, not the initial near-zero head
        for parameter in policy.net.parameters():
            parameter.add_(torch.randn_like(parameter))
    deployed = DeployedPolicy(policy)
    expected = policy.act(obs.numpy())
    assert expected.min() < -0.45 and expected.max() > 0.15  # the bounds are reached or approached
    np.testing.assert_allclose(deployed.act(obs.numpy()), expected, atol=2e-5)
    np.testing.assert_allclose(deployed(obs[0].numpy()), expected[0], atol=2e-5)
    assert np.all(deployed.act(obs.numpy()) >= low - 1e-6) and np.all(deployed.act(obs.numpy()) <= high + 1e-6)
    with pytest.raises(ValueError, match=r"observation of shape \(7,\), expected \(8,\) or \(B, 8\)"):
        deployed.act(np.zeros(7))
    with torch.no_grad():
        policy.net[0].weight.zero_()
    np.testing.assert_allclose(deployed.act(obs.numpy()), expected, atol=2e-5)


def test_running_normalizer_equals_the_statistics_of_everything_seen():
    data = np.random.default_rng(0).normal(3.0, 2.0, size=(1000, 4))
    norm = RunningNormalizer(4)
    for chunk in np.array_split(data, 7):
        norm.update(torch.from_numpy(chunk))
    np.testing.assert_allclose(norm.mean.numpy(), data.mean(0))
    np.testing.assert_allclose(norm.var.numpy(), data.var(0))


# -- learning --------------------------------------------------------------------------------------
class PointMass(gym.Env):
    """x' = x + 0.1·a on a line, a ∈ [-1, 1]; reward -|x' - goal|; 20 steps; start and
    goal uniform in [-1, 1]. Optimal return ≈ -2.3 on average (it takes up to 10 steps)."""

    goal_dims = 1  # obs = [x, goal]

    def __init__(self):
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float64)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x, self.goal, self.t = self.np_random.uniform(-1, 1, size=3)[:2].tolist() + [0]
        return np.array([self.x, self.goal]), {}

    def sample_goal(self):
        return self.np_random.uniform(-1, 1, size=1)

    @staticmethod
    def achieved_goal(obs):
        return obs[..., :1]

    @staticmethod
    def reward_fn(obs, act, next_obs):
        """The reward, batched in torch: -|x' - goal|."""
        return -(next_obs[:, 0] - next_obs[:, 1]).abs()

    def step(self, action):
        self.x += 0.1 * float(np.clip(action[0], -1, 1))
        self.t += 1
        distance = abs(self.x - self.goal)
        return np.array([self.x, self.goal]), -distance, False, self.t >= 20, {"success": distance < 0.05}


@pytest.mark.parametrize("algo, steps, settings", [
    ("ppo", 12_000, {}),
    ("trpo", 12_000, {"max_kl": 0.02}),
])
def test_ppo_and_trpo_learn_to_move_a_point_mass_to_its_goal(algo, steps, settings):
    result = train_policy(PointMass, algo=algo, total_steps=steps, seed=0, n_steps=1000, eval_every=steps, eval_episodes=20, **settings)
    (_, first), (_, last) = result.eval_curve[0], result.eval_curve[-1]
    assert first < -6.0  # untrained: it barely moves
    assert last > -4.0, result.eval_curve
    if algo == "trpo":  # the line search keeps every update inside the trust region
        assert all(u["kl"] <= 0.02 + 1e-9 for u in result.updates)


def reward_batch(rewards: torch.Tensor, episode_length: int, start: int = 0):
    """A Batch of rewards [T, N] from step ``start`` of a run whose episodes last ``episode_length``."""
    from mbrl_control.policies.rollout import Batch

    T, N = rewards.shape
    timesteps = ((start + torch.arange(T)) % episode_length).unsqueeze(1).expand(T, N)
    return Batch(obs=torch.zeros(T, N, 2), next_obs=torch.zeros(T, N, 2), raw_actions=torch.zeros(T, N, 1), rewards=rewards,
                 terminated=torch.zeros(T, N, dtype=torch.bool), ends=timesteps == episode_length - 1, timesteps=timesteps)


def test_reward_normalisation_gives_discounted_returns_unit_scale_in_any_units():
    from mbrl_control.policies.config import PolicyConfig
    from mbrl_control.policies.train import make_networks
    from mbrl_control.policies.trust_region import TRPO

    def learner():
        cfg = PolicyConfig(gamma=0.9, normalize_reward=True)
        return TRPO(*make_networks(2, np.array([-1.0]), np.array([1.0]), cfg), cfg)

    rewards = -torch.rand(400, 2, generator=torch.Generator().manual_seed(0))
    scaled = learner().scale_rewards(reward_batch(rewards, 50))
    torch.testing.assert_close(learner().scale_rewards(reward_batch(1000 * rewards, 50)), scaled)  # units do not matter
    discounted = [scaled[t - t % 50 : t + 1, 0].flip(0) @ 0.9 ** torch.arange(t % 50 + 1.0) for t in range(400)]
    assert 0.8 < torch.stack(discounted).std().item() < 1.25  # R_t = γ R_{t-1} + r_t from each episode's start
    # the running return carries across batches: two batches give the statistics of both at once
    halves = learner()
    halves.scale_rewards(reward_batch(rewards[:175], 50))
    halves.scale_rewards(reward_batch(rewards[175:], 50, start=175))
    whole = learner()
    whole.scale_rewards(reward_batch(rewards, 50))
    torch.testing.assert_close(halves.return_stats.var, whole.return_stats.var)


def test_bad_settings_are_refused_with_the_reason():
    with pytest.raises(ConfigError, match="algo"):
        train_policy(PointMass, algo="sac", total_steps=10)
    with pytest.raises(ConfigError, match="batch_size = 512: larger than a batch"):
        train_policy(PointMass, algo="ppo", total_steps=10, n_steps=100, batch_size=512)
    with pytest.raises(ConfigError, match="clip_range"):
        train_policy(PointMass, total_steps=10, clip_range=-0.1)


# -- checkpoints -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def short_run():
    return train_policy(PointMass, algo="ppo_kl", total_steps=2000, seed=3, n_steps=500, eval_every=1000, eval_episodes=3,
                        normalize_reward=True, relative_goal=1)


def test_same_seed_same_run(short_run):
    again = train_policy(PointMass, algo="ppo_kl", total_steps=2000, seed=3, n_steps=500, eval_every=1000, eval_episodes=3,
                         normalize_reward=True, relative_goal=1)
    assert again.eval_curve == short_run.eval_curve


def test_checkpoint_carries_the_observation_statistics(short_run, tmp_path):
    from mbrl_control.policies import load_policy, save_policy

    path = save_policy(short_run, tmp_path / "policy.pt")
    loaded = load_policy(path, obs_dim=2, act_dim=1)
    assert loaded.obs_norm.count.item() == 2000
    assert loaded.relative_goal == 1 and loaded.obs_norm.mean.shape == (4,)  # [x, goal, goal - x, its sign]
    obs = np.random.default_rng(0).uniform(-1, 1, size=(10, 2))
    np.testing.assert_array_equal(loaded(obs), short_run.policy(obs))
    assert loaded(obs[0]).shape == (1,)


def test_unusable_checkpoints_are_refused_naming_the_file(short_run, tmp_path):
    from mbrl_control.checkpoint import CheckpointError
    from mbrl_control.policies import load_policy, save_policy

    path = save_policy(short_run, tmp_path / "policy.pt")
    with pytest.raises(CheckpointError, match="obs_dim=2, act_dim=1, but this system has obs_dim=16"):
        load_policy(path, obs_dim=16, act_dim=5)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="truncated.pt"):
        load_policy(truncated)
    with pytest.raises(CheckpointError, match="resume"):
        train_policy(PointMass, algo="trpo", total_steps=3000, resume=path)  # another algorithm's optimiser state


def test_training_resumes_where_the_checkpoint_left_off(short_run, tmp_path):
    from mbrl_control.policies import save_policy

    path = save_policy(short_run, tmp_path / "policy.pt")
    resumed = train_policy(PointMass, algo="ppo_kl", total_steps=3000, seed=3, n_steps=500, eval_every=1000, eval_episodes=3,
                           normalize_reward=True, relative_goal=1, resume=path)
    assert resumed.env_steps == 3000
    assert resumed.eval_curve[: len(short_run.eval_curve)] == short_run.eval_curve
    assert [s for s, _ in resumed.eval_curve] == [0, 1000, 2000, 3000]
    assert len(resumed.updates) == 2  # only the new batches
    assert resumed.policy.obs_norm.count.item() == 3000
    assert resumed.learner_state["return_stats"]["count"].item() == 3000  # the reward scale resumed too


# -- with a learned model -----------------------------------------------------------------------------
def optimal_point_mass_action(obs):
    return np.clip([(obs[1] - obs[0]) / 0.1], -1.0, 1.0)


def test_dagger_distils_an_expert_into_a_policy():
    from mbrl_control.policies.imitation import dagger

    result = dagger(PointMass(), optimal_point_mass_action, iterations=3, episodes_per_iteration=4, eval_episodes=20, epochs=200)
    assert [it.labels for it in result.iterations] == [80, 160, 240]  # every visited state labelled
    assert result.iterations[-1].mean_return > -4.0  # the expert: about -2.3; an untrained policy: about -9
    assert result.iterations[-1].success_rate >= 0.9


def test_a_cloned_ensemble_fits_each_member_alone_and_acts_with_their_mean(tmp_path):
    """Behaviour cloning a policy of two networks fits each as if it were cloned alone (the
    first is the one-network clone from the same initialisation and batches); the policy
    acts with the members' mean, and its checkpoint brings both back."""
    from mbrl_control.models.ensemble import EnsembleLinear
    from mbrl_control.policies import load_policy, save_policy
    from mbrl_control.policies.config import PolicyConfig
    from mbrl_control.policies.imitation import behaviour_cloning
    from mbrl_control.policies.train import PolicyResult, make_networks

    obs = np.random.default_rng(0).uniform(-1.0, 1.0, size=(300, 2))
    actions = np.array([optimal_point_mass_action(o) for o in obs])
    cfg = PolicyConfig(hidden=16, activation="relu", state_dependent_std=True, members=2)
    torch.manual_seed(0)
    pair, value = make_networks(2, np.array([-1.0]), np.array([1.0]), cfg)
    alone = [make_networks(2, np.array([-1.0]), np.array([1.0]), cfg.replace(members=1))[0] for _ in range(2)]

    def copy_member(k: int) -> None:  # member k's weights [in, out] into a one-network policy's [out, in]
        singles = [m for m in alone[k].net if isinstance(m, torch.nn.Linear)]
        members = [m for m in pair.net if isinstance(m, EnsembleLinear)]
        with torch.no_grad():
            for single, member in zip(singles, members, strict=True):
                single.weight.copy_(member.weight[k].T)
                single.bias.copy_(member.bias[k, 0])

    copy_member(0)
    behaviour_cloning(pair, obs, actions, epochs=100, seed=1)
    behaviour_cloning(alone[0], obs, actions, epochs=100, seed=1)
    x = torch.as_tensor(obs, dtype=torch.float32)
    with torch.no_grad():
        torch.testing.assert_close(pair.outputs(x)[0], alone[0].outputs(x)[0], atol=2e-3, rtol=0)  # to Adam's ε and rounding
        assert (pair.outputs(x)[1] - pair.outputs(x)[0]).abs().max() > 1e-2  # each from its own initialisation
        for k in range(2):  # the members as they are now, each a policy of its own
            copy_member(k)
            alone[k].obs_norm.load_state_dict(pair.obs_norm.state_dict())
        mean = (alone[0].mean_and_log_std(x)[0] + alone[1].mean_and_log_std(x)[0]) / 2
    np.testing.assert_allclose(pair.act(obs), pair.to_env(mean).numpy(), atol=1e-5)
    assert np.abs(pair.act(obs) - actions).mean() < 0.5 * np.abs(actions).mean()  # it learnt the expert
    loaded = load_policy(save_policy(PolicyResult(pair, value, cfg, env_steps=0), tmp_path / "policy.pt"), obs_dim=2, act_dim=1)
    assert loaded.members == 2
    np.testing.assert_array_equal(loaded.act(obs), pair.act(obs))


def test_dagger_relabels_visited_states_with_goals_from_the_task():
    from mbrl_control.policies.imitation import dagger

    result = dagger(PointMass(), optimal_point_mass_action, iterations=2, episodes_per_iteration=2, eval_episodes=2,
                    epochs=2, relabelled_goals=2)
    assert [it.labels for it in result.iterations] == [120, 240]
    assert result.env_steps == 80  # relabelling costs no steps
    obs = result.obs.reshape(4, 3, 20, 2)  # episode, (visited, goal 1, goal 2), step, [x, goal]
    assert np.array_equal(obs[:, 1:, :, 0], np.repeat(obs[:, :1, :, 0], 2, axis=1))  # the same states
    goals = obs[..., 1]
    assert (goals == goals[..., :1]).all()  # one goal per pass
    assert len(np.unique(goals[..., 0])) == 12  # each pass a new one
    assert np.allclose(result.actions, [optimal_point_mass_action(o) for o in result.obs])  # labelled by the expert
    with pytest.raises(ValueError, match="relabelled_goals = 1: .*no goal_dims.*PendulumEnv"):
        dagger(gym.make("Pendulum-v1"), lambda obs: np.zeros(1), iterations=1, relabelled_goals=1)


def test_hindsight_goals_are_places_the_episode_reached():
    from mbrl_control.policies.imitation import dagger

    result = dagger(PointMass(), optimal_point_mass_action, iterations=2, episodes_per_iteration=2, eval_episodes=2,
                    epochs=2, relabelled_goals=1, hindsight_goals=2)
    assert result.env_steps == 80 and len(result.obs) == 4 * 4 * 20
    obs = result.obs.reshape(4, 4, 20, 2)  # episode, (visited, task goal, hindsight 1, hindsight 2), step, [x, goal]
    assert np.array_equal(obs[:, 1:, :, 0], np.repeat(obs[:, :1, :, 0], 3, axis=1))  # the same states
    for episode in obs:
        for goal in episode[2:, 0, 1]:
            assert np.isclose(episode[0, :, 0], goal).any()  # an x the episode reached
    assert np.allclose(result.actions, [optimal_point_mass_action(o) for o in result.obs])
    with pytest.raises(ValueError, match="hindsight_goals = 2: .*no goal_dims and achieved_goal.*PendulumEnv"):
        dagger(gym.make("Pendulum-v1"), lambda obs: np.zeros(1), iterations=1, hindsight_goals=2)


def test_stay_goals_label_each_state_for_staying_where_it_is():
    from mbrl_control.policies.imitation import dagger

    result = dagger(PointMass(), optimal_point_mass_action, iterations=1, episodes_per_iteration=2, eval_episodes=1,
                    epochs=2, hindsight_goals=1, stay_goals=True)
    obs = result.obs.reshape(2, 3, 20, 2)  # episode, (visited, hindsight, stay), step, [x, goal]
    assert np.array_equal(obs[:, 2, :, 0], obs[:, 0, :, 0])  # the same states...
    assert np.array_equal(obs[:, 2, :, 1], obs[:, 2, :, 0])  # ...each with its own place as goal
    stay = result.actions.reshape(2, 3, 20, 1)[:, 2]
    assert np.all(stay == 0.0)  # the expert's action there: stay
    with pytest.raises(ValueError, match="stay_goals = 1: .*no goal_dims and achieved_goal.*PendulumEnv"):
        dagger(gym.make("Pendulum-v1"), lambda obs: np.zeros(1), iterations=1, stay_goals=True)


def test_relabelled_goals_teach_a_policy_goals_its_episodes_never_had():
    """Without the goal difference among its inputs (with it, one episode of PointMass
    already shows every goal), a policy learns goals only from its labels."""
    from mbrl_control.policies.imitation import dagger

    def one_episode(relabelled_goals):
        return dagger(PointMass(), optimal_point_mass_action, iterations=2, episodes_per_iteration=1, eval_episodes=20,
                      epochs=100, relabelled_goals=relabelled_goals, relative_goal=0).iterations[-1]

    alone, relabelled = one_episode(0), one_episode(8)
    assert relabelled.success_rate >= alone.success_rate + 0.3, (alone, relabelled)
    assert relabelled.mean_return > alone.mean_return


def test_imagined_env_follows_the_model_and_restarts_with_new_goals():
    from mbrl_control.loops.policy_search import ImaginedEnv

    class Shift:  # x' = x + 0.1 a, the point mass's true dynamics
        members, history = 1, 0

        def sample(self, obs, act, past=None, noise=None, members=None, generator=None):
            return torch.stack([obs[:, 0] + 0.1 * act[:, 0], obs[:, 1]], 1)

    env = PointMass()
    starts = np.array([[0.5, 0.0]])
    imagined = ImaginedEnv(Shift(), PointMass.reward_fn, starts, 3, 4, env.observation_space, env.action_space, goals=np.array([[0.9]]))
    obs, _ = imagined.reset(seed=0)
    np.testing.assert_allclose(obs, [[0.5, 0.9]] * 4)  # start state, goal from the pool
    for t in range(3):
        obs, reward, terminated, truncated, info = imagined.step(np.ones((4, 1), np.float32))
    np.testing.assert_allclose(np.stack(info["final_obs"]), [[0.8, 0.9]] * 4, atol=1e-6)
    np.testing.assert_allclose(reward, [-0.1] * 4, atol=1e-6)
    assert truncated.all() and not terminated.any()
    np.testing.assert_allclose(obs, [[0.5, 0.9]] * 4)  # restarted in the same step

    # some rollouts start at their goal: the start's achieved goal (its x) replaces the drawn one
    at_goal = ImaginedEnv(Shift(), PointMass.reward_fn, starts, 3, 1000, env.observation_space, env.action_space,
                          goals=np.array([[0.9]]), start_at_goal=0.3)
    goals = at_goal.reset(seed=0)[0][:, 1]
    assert set(np.round(goals, 6)) == {0.5, 0.9} and 0.25 < np.mean(goals == 0.5) < 0.35


@pytest.mark.parametrize("method, iterations, settings, better_than", [
    ("policy_gradient", 4, {}, -6.0),  # PPO on imagined rollouts
    ("backprop", 2, {"learning_rate": 3e-3, "squash": True}, -4.0),  # MBRL 2.0
])
def test_policy_search_inside_a_learned_model_improves_the_real_policy(method, iterations, settings, better_than):
    from mbrl_control.loops.policy_search import train_policy_in_model

    result = train_policy_in_model(PointMass(), model="mlp", method=method, seed_episodes=5, iterations=iterations,
                                   updates_per_iteration=10, imagined_rollouts=64, imagined_horizon=10, eval_episodes=20,
                                   model_overrides={"max_epochs": 50}, **settings)
    assert [steps for steps, _, _ in result.curve] == [100 + 20 * k for k in range(1, iterations + 1)]  # one real episode per iteration
    assert result.curve[-1][1] > better_than, result.curve  # an untrained policy: about -9


def test_the_trainer_nodes_dagger_and_the_librarys_give_the_same_policy():
    """One DAgger: the pg_trainer's method, given the labels ``dagger()`` aggregated and the
    same seed and round, clones the very policy ``dagger()`` returned."""
    from mbrl_control.data.transitions import TransitionDataset
    from mbrl_control.loops.policy_methods import POLICY_METHODS, RoundData
    from mbrl_control.loops.policy_search import ImaginedPolicyTrainer
    from mbrl_control.policies.config import PolicyConfig
    from mbrl_control.policies.imitation import dagger

    env = PointMass()
    library = dagger(env, optimal_point_mass_action, iterations=2, episodes_per_iteration=2, eval_episodes=1, epochs=20,
                     hindsight_goals=1, seed=3, hidden=32)
    method = POLICY_METHODS["dagger"]
    network = PolicyConfig(seed=3, relative_goal=1).replace(**{**method.policy_settings(method.Config()), "hidden": 32})  # as the node builds it
    trainer = ImaginedPolicyTrainer(env.observation_space, env.action_space, PointMass.reward_fn, method.imagined, network)
    trainer.rounds = 1  # the library's last policy was its round 1
    labels = TransitionDataset(2, 1)
    labels.append(library.obs, library.actions, library.obs, np.zeros(len(library.obs), dtype=int))
    nothing_new = TransitionDataset(2, 1)
    method.round(trainer, None, method.Config(epochs=20), RoundData(labels.obs, nothing_new, labels))
    node, lib = trainer.policy.state_dict(), library.policy.state_dict()
    assert node.keys() == lib.keys()
    for name in lib:
        torch.testing.assert_close(node[name], lib[name], rtol=0, atol=0)


@pytest.mark.parametrize("name", ["backprop", "policy_gradient"])
def test_a_round_starts_imagined_rollouts_with_the_actions_in_flight(name):
    """A servo that acts a tick late (a model with history 1): the trainer's rollouts from
    a recorded state carry on the action sent before it (``RoundData.past``), as the arm
    does, instead of starting from rest."""
    from mbrl_control.data.transitions import TransitionDataset
    from mbrl_control.loops.policy_methods import POLICY_METHODS, RoundData
    from mbrl_control.loops.policy_search import ImaginedPolicyTrainer
    from mbrl_control.policies.config import PolicyConfig

    class Late:  # x' = x + 0.1 a_{t-1}: the action sent a tick ago moves the point now
        members, history, act_dim = 1, 1, 1

        def sample(self, obs, act, past=None, noise=None, members=None, generator=None):
            return torch.stack([obs[:, 0] + 0.1 * past[:, -1, 0], obs[:, 1]], 1)

    env, method = PointMass(), POLICY_METHODS[name]
    starts = np.array([[0.5, 0.9]])
    returns = {}
    for sent in (0.0, 1.0):  # at rest, or moving toward the goal at full speed
        trainer = ImaginedPolicyTrainer(env.observation_space, env.action_space, PointMass.reward_fn, method.imagined,
                                        PolicyConfig(seed=0, hidden=8, n_envs=4, n_steps=2, batch_size=8))
        data = RoundData(starts, TransitionDataset(2, 1), TransitionDataset(2, 1), past=np.full((1, 1, 1), sent))
        returns[sent] = method.round(trainer, Late(), method.Config(updates_per_round=1, start_at_goal=0.0), data)
    # the first imagined step moves by 0.1 · the action in flight, whatever the policy does
    assert returns[1.0] > returns[0.0] + 0.05, returns


def test_dagger_labels_in_batches_as_it_does_one_by_one():
    from mbrl_control.policies.imitation import dagger

    calls = []

    def batched(sequences, sent):
        calls.append(sequences.shape[:2])
        assert sent.shape == (*sequences.shape[:2], 1)  # the actions taken at the states
        return np.stack([[optimal_point_mass_action(s) for s in sequence] for sequence in sequences])

    settings = dict(iterations=2, episodes_per_iteration=2, eval_episodes=1, epochs=2, hindsight_goals=2, seed=1)
    one_by_one = dagger(PointMass(), optimal_point_mass_action, **settings)
    in_batches = dagger(PointMass(), optimal_point_mass_action, label=batched, **settings)
    np.testing.assert_allclose(in_batches.obs, one_by_one.obs)
    np.testing.assert_allclose(in_batches.actions, one_by_one.actions)
    # one call per episode: the expert's episodes' 2 hindsight copies, the policy's episodes and their 2 copies, 20 steps each
    assert calls == [(2, 20), (2, 20), (3, 20), (3, 20)]


def test_the_gradient_of_the_imagined_return_matches_finite_differences():
    """MBRL 2.0's gradient: d/dθ of the return of π_θ through a (tiny, fitted, stochastic)
    ensemble, by backpropagation, equals central differences of that return."""
    from mbrl_control.data.transitions import TransitionDataset
    from mbrl_control.loops.policy_search import imagined_return
    from mbrl_control.models import make_model
    from mbrl_control.policies.networks import GaussianPolicy

    rng = np.random.default_rng(0)
    data = TransitionDataset(2, 1)
    obs = rng.uniform(-1, 1, (200, 2))
    act = rng.uniform(-1, 1, (200, 1))
    data.append(obs, act, np.stack([obs[:, 0] + 0.1 * act[:, 0], obs[:, 1]], 1) + 0.01 * rng.standard_normal((200, 2)),
                np.repeat(np.arange(10), 20))
    model = make_model("pe", 2, 1, hidden=16, layers=2, members=2, max_epochs=3, seed=0)
    model.fit(data)
    torch.manual_seed(0)
    policy = GaussianPolicy(2, -np.ones(1), np.ones(1), hidden=(8,), squash=True)
    torch.nn.init.normal_(policy.net[-1].weight, std=0.5)  # away from the zero-action start, where every step looks alike
    policy.update_obs_stats(torch.as_tensor(obs))
    starts = torch.as_tensor(obs[:8], dtype=torch.float32)
    noise = torch.randn((4, 8, 2), generator=torch.Generator().manual_seed(1))

    def score():
        return imagined_return(policy, model, PointMass.reward_fn, starts, noise).sum()

    score().backward()
    assert policy.log_std.grad is None  # the mean action's return does not depend on σ
    assert max(float(p.grad.abs().max()) for p in policy.net.parameters()) > 1e-2  # a gradient worth checking
    for param in policy.net.parameters():
        flat, grad = param.data.view(-1), param.grad.view(-1)
        for k in range(min(4, len(flat))):
            eps, kept = 1e-2, flat[k].item()
            with torch.no_grad():
                flat[k] = kept + eps
                up = score().item()
                flat[k] = kept - eps
                down = score().item()
                flat[k] = kept
            assert grad[k].item() == pytest.approx((up - down) / (2 * eps), rel=0.05, abs=2e-3), (param.shape, k)


def test_the_goal_difference_is_given_where_the_observation_ends_in_achieved_and_goal():
    """``goal_inputs``: ArmReach's and PointMass's observations end in [achieved goal, goal]
    and get the goal difference; a task without goals, or whose achieved goal lies elsewhere
    in the observation, does not."""
    from mbrl_control.arm.env import ArmReach
    from mbrl_control.policies.networks import goal_inputs

    assert goal_inputs(ArmReach(), 16) == 3
    assert goal_inputs(PointMass(), 2) == 1

    class Elsewhere:
        goal_dims = 1

        @staticmethod
        def achieved_goal(obs):
            return obs[..., :1]  # obs = [x, y, goal]: achieved is x, not the entry before the goal

    assert goal_inputs(Elsewhere(), 3) == 0
    assert goal_inputs(gym.make("Pendulum-v1").unwrapped, 3) == 0


def test_policy_search_takes_the_methods_defaults_and_refuses_one_that_needs_an_expert():
    """The method's class owns its defaults (backprop: a squashed policy, 50 updates per
    round, its own imagined rollouts); DAgger labels with a planner and is no policy search through a model."""
    from mbrl_control.config import ConfigError
    from mbrl_control.loops.policy_methods import POLICY_METHODS
    from mbrl_control.loops.policy_search import train_policy_in_model

    backprop = POLICY_METHODS["backprop"]
    assert backprop.Config().updates_per_round == 50 and backprop.policy_settings(backprop.Config())["squash"]
    result = train_policy_in_model(PointMass(), model="mlp", method="backprop", seed_episodes=1, iterations=1,
                                   imagined_rollouts=8, imagined_horizon=2, eval_episodes=1, model_overrides={"max_epochs": 2})
    assert result.policy.squash and result.policy.relative_goal == 1
    assert result.imagined_steps == 50 * 8 * 2
    settings = backprop.Config()  # rollouts and horizon not given: the method's own
    result = train_policy_in_model(PointMass(), model="mlp", method="backprop", seed_episodes=1, iterations=1,
                                   updates_per_iteration=1, eval_episodes=1, model_overrides={"max_epochs": 2})
    assert result.imagined_steps == settings.imagined_rollouts * settings.imagined_horizon != 256 * 10
    with pytest.raises(ConfigError, match="method = 'dagger'.*backprop"):
        train_policy_in_model(PointMass(), method="dagger")
