"""Settings of the policy-gradient trainer: one flat config for every algorithm, so the CLI
(``--set NAME=VALUE``) and ROS parameters address them the same way."""

from __future__ import annotations

from dataclasses import dataclass

from mbrl_control.config import Config, ConfigError, param

ALGOS = ("reinforce", "a2c", "npg", "trpo", "ppo", "ppo_kl")
# The network of the policies learnt from a model — DAgger's clone, MBRL 2.0, model-based PPO —
# over PolicyConfig's 64 × 2 tanh, the model-free trainer's (measured where each method uses it)
MODEL_BASED_NETWORK: dict[str, object] = {"hidden": 256, "activation": "relu"}


@dataclass(frozen=True)
class PolicyConfig(Config):
    """Settings of :func:`mbrl_control.train_policy`."""

    algo: str = param("ppo", "Policy-gradient algorithm.", choices=ALGOS)
    seed: int = param(0, "Seed of networks, action noise and environments.", low=0)
    threads: int = param(1, "Torch threads (small MLPs train fastest on one).", low=1, high=256)
    # data
    n_envs: int = param(1, "Environments stepped side by side (gymnasium vector API).", low=1, high=1024)
    n_steps: int = param(2048, "Steps per environment in each batch.", low=1, high=1_000_000)
    gamma: float = param(0.99, "Discount γ.", low=0.0, high=1.0)
    gae_lambda: float = param(0.95, "GAE λ (a2c, npg, trpo, ppo, ppo_kl).", low=0.0, high=1.0)
    normalize_obs: bool = param(True, "Standardise observations by running statistics stored in the policy.")
    normalize_reward: bool = param(False, "Divide rewards by the running standard deviation of the discounted return (value targets near unit scale, as VecNormalize).")
    # networks
    hidden: int = param(64, "Width of each hidden layer (policy and value).", low=1, high=4096)
    layers: int = param(2, "Hidden layers (policy and value).", low=1, high=16)
    activation: str = param("tanh", "Hidden activation.", choices=("tanh", "relu", "silu", "elu"))
    members: int = param(1, "Policy networks side by side, each initialised on its own; the policy's mean action (and state-dependent log σ) is their mean. Behaviour cloning fits each member to the labels alone; the gradient methods train their mean (for MBRL 2.0 on ArmReach that did worse: 73 % and 83 % against 87 % and 90 %, 2 seeds).", low=1, high=64)
    log_std_init: float = param(0.0, "Initial log standard deviation of the Gaussian policy.", low=-10.0, high=2.0)
    state_dependent_std: bool = param(False, "Standard deviation from a network head instead of a free parameter.")
    squash: bool = param(False, "tanh-squash actions into the bounds (with the log-prob correction) instead of clipping.")
    relative_goal: int = param(0, "For observations ending in [achieved goal, goal] of this many dims each (3 on ArmReach), also give the networks δ = goal - achieved and its direction (0: off).", low=0, high=1000)
    goal_scale: float = param(0.005, "ε of the goal direction δ/(‖δ‖ + ε) (relative_goal), in goal units: it fades to zero within about ε of the goal (m on ArmReach).", low=0.0, low_exclusive=True, high=1e6)
    # optimisation
    learning_rate: float = param(3e-4, "Adam learning rate of the policy (reinforce, a2c, ppo, ppo_kl; the value too for ppo).", low=0.0, low_exclusive=True, high=1.0)
    value_learning_rate: float = param(1e-3, "Adam learning rate of the value network (reinforce, a2c, npg, trpo).", low=0.0, low_exclusive=True, high=1.0)
    value_epochs: int = param(10, "Passes of value regression per batch (reinforce, a2c, npg, trpo).", low=1, high=1000)
    batch_size: int = param(64, "Minibatch size (ppo epochs; value regression).", low=1, high=1_000_000)
    normalize_advantage: bool = param(True, "Standardise advantages within each batch (a2c, npg, trpo, ppo, ppo_kl).")
    max_grad_norm: float = param(0.5, "Clip the gradient norm (0: no clipping).", low=0.0, high=1e6)
    # REINFORCE
    returns: str = param("reward_to_go", "REINFORCE's return per step: the reward-to-go (causality) or the whole trajectory's.", choices=("reward_to_go", "total"))
    baseline: str = param("value", "REINFORCE baseline: none, batch mean, optimal E[g²r]/E[g²], learned value.", choices=("none", "mean", "optimal", "value"))
    discount_option: int = param(1, "Seed 003 §4.1.4: 1 discounts rewards in the reward-to-go; 2 also weighs step t by γ^t.", low=1, high=2)
    # actor-critic
    advantage: str = param("gae", "Actor-critic advantage: GAE(γ, λ) or n-step returns.", choices=("gae", "n_step"))
    n_step: int = param(5, "n of the n-step advantage.", low=1, high=100_000)
    # natural gradient / TRPO
    max_kl: float = param(0.01, "Trust region δ on the mean KL(π_old ‖ π) (npg step size, trpo bound).", low=0.0, low_exclusive=True, high=10.0)
    cg_iterations: int = param(10, "Conjugate-gradient iterations for F⁻¹g.", low=1, high=1000)
    cg_damping: float = param(0.1, "Damping added to the Fisher matrix: (F + λI)x = g.", low=0.0, high=100.0)
    line_search_steps: int = param(10, "TRPO backtracking steps (step × shrink^k).", low=1, high=100)
    line_search_shrink: float = param(0.8, "TRPO backtracking factor.", low=0.0, low_exclusive=True, high=1.0)
    # PPO
    n_epochs: int = param(10, "PPO passes over each batch.", low=1, high=1000)
    clip_range: float = param(0.2, "PPO-clip ε: the ratio is clipped to [1 - ε, 1 + ε].", low=0.0, low_exclusive=True, high=10.0)
    ent_coef: float = param(0.0, "Entropy bonus weight.", low=0.0, high=10.0)
    vf_coef: float = param(0.5, "Value-loss weight in PPO's joint loss.", low=0.0, high=100.0)
    target_kl: float = param(0.01, "PPO-KL: target of the mean KL per update (β doubles above 1.5×, halves below ÷1.5).", low=0.0, low_exclusive=True, high=10.0)
    kl_beta: float = param(1.0, "PPO-KL: initial KL-penalty weight β.", low=0.0, high=1e6)
    # evaluation
    eval_every: int = param(10_000, "Environment steps between evaluations of the deterministic policy.", low=1, high=1_000_000_000)
    eval_episodes: int = param(10, "Episodes per evaluation.", low=1, high=10_000)

    def check(self) -> None:
        if self.algo in ("ppo", "ppo_kl") and self.batch_size > self.n_envs * self.n_steps:
            raise ConfigError(
                f"PolicyConfig.batch_size = {self.batch_size}: larger than a batch of n_envs × n_steps = {self.n_envs * self.n_steps} steps"
            )
