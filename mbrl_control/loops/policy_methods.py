"""How the policy trainer (``pg_trainer``) improves its policy each round: one registered
class per method, each owning its settings (the node declares them as ``method.*``), so a
new method is a class, offered by the node's ``method`` parameter and the launch files at
once.

A round gets the current model and :class:`RoundData` (the recorded states, the episodes
new since the last round, DAgger's labels) and improves the policy of an
:class:`~mbrl_control.loops.policy_search.ImaginedPolicyTrainer` in place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import numpy as np

from mbrl_control.config import Config, param
from mbrl_control.data.transitions import TransitionDataset
from mbrl_control.devices import DEVICES
from mbrl_control.loops.policy_search import ImaginedPolicyTrainer
from mbrl_control.models.dynamics import DynamicsModel
from mbrl_control.policies.config import MODEL_BASED_NETWORK
from mbrl_control.policies.imitation import EPOCHS, MEMBERS, Relabelling, aggregate, clone

POLICY_METHODS: dict[str, type["PolicyMethod"]] = {}
# pg_trainer's and sim.launch.py's method: the one that learnt ArmReach soonest from the model
# (bringup sim_pg: 9, 10 and 10 of episodes 5-14 within 2 cm; benchmarks/model_based_policies.py,
# 3 seeds, 30 targets, the model within the joint limits: 96 % after 1 000 real steps, PPO 89 % after 2 000)
DEFAULT_METHOD = "backprop"

Expert = Any  # an MPCController: ``act(obs) -> action`` and ``reset()``


@dataclass
class RoundData:
    """What one round learns from.

    Attributes:
        states: [M, obs_dim] recorded states to start imagined rollouts from.
        episodes: the recorded episodes: every one so far, or, for a method that labels
            them (an ``expert``), those that arrived since the last round.
        labels: the labelled states so far (obs, expert action); a round may grow it.
        expert: builds the expert for a model (methods with ``expert_settings``), else None.
        achieved_goal: the goal [..., G] an observation [..., obs_dim] has reached, for
            hindsight goals (DAgger), or None.
        past: [M, h, A] the actions sent before each of ``states`` (those still in flight
            for a model with ``history`` h), or None: none.
    """

    states: np.ndarray
    episodes: TransitionDataset
    labels: TransitionDataset
    expert: Callable[[DynamicsModel], Expert] | None = None
    achieved_goal: Callable[[np.ndarray], np.ndarray] | None = None
    past: np.ndarray | None = None


class PolicyMethod:
    """One way of improving the policy from the current model and the recorded episodes.

    Subclasses set ``name`` (registering them in :data:`POLICY_METHODS`), ``Config`` (their
    settings), ``metric`` (what :meth:`round` returns), ``imagined`` (how the
    :class:`ImaginedPolicyTrainer` updates: ``policy_gradient`` or ``backprop``),
    ``expert_settings`` (for a method whose states are labelled by the MPC planner: the
    defaults of the planner settings the node declares, over
    :class:`~mbrl_control.planning.mpc.MPCConfig`'s; None: no expert) and ``needs_new_data``
    (no round without new episodes or a new model).
    """

    name: ClassVar[str] = ""
    Config: ClassVar[type[Config]]
    metric: ClassVar[str]
    imagined: ClassVar[str] = "policy_gradient"
    expert_settings: ClassVar[dict[str, Any] | None] = None
    needs_new_data: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name:
            POLICY_METHODS[cls.name] = cls

    @classmethod
    def policy_settings(cls, config: Config) -> dict[str, Any]:
        """The :class:`~mbrl_control.policies.config.PolicyConfig` fields ``config`` sets."""
        return {}

    @classmethod
    def round(cls, trainer: ImaginedPolicyTrainer, model: DynamicsModel, config: Config, data: RoundData) -> float:
        """Improve ``trainer``'s policy once; the round's :attr:`metric`."""
        raise NotImplementedError


@dataclass(frozen=True)
class ImaginedConfig(Config):
    """Settings of the methods that learn on imagined rollouts through the model.

    The rollouts' defaults, measured on ArmReach (3 seeds): 30 steps of 64 rollouts.

    * Longer rollouts: MBRL 2.0's success on 30 targets after 1 000 real steps (the 64 × 2
      tanh policy) was 74 % at 10 steps, 92 % at 20, 97 % at 30 (256 rollouts each). Ten
      steps of 0.1 rad cannot show what a small command held all episode does: the wrist
      roll turned 0.7 rad that way and the arm drifted off its target.
    * Fewer of them (measured with that policy): 30 steps of 64 rollouts scored 88 %, and make the trainer's rounds
      fast enough for the graph, where a policy that learns in time matters (``bringup
      sim_pg``: 10 of episodes 5-14 within 2 cm in each of two runs, against 6 and 9 of 10
      with 256 rollouts, whose rounds took 10-12 s instead of 7-9 s). Library runs
      without a clock can take 256.
    * Model-based PPO after 2 000 real steps (its 256 × 2 ReLU policy): 70 % (60/80/70)
      at 10 steps of 256, 87 % (70/90/100) at 30 of 64, in less time (10 targets).
    """

    imagined_rollouts: int = param(64, "Imagined rollouts per update.", low=1, high=100_000, read_only=True)
    imagined_horizon: int = param(30, "Steps of each imagined rollout.", low=1, high=1000, read_only=True)
    updates_per_round: int = param(20, "Policy updates per round.", low=1, high=100_000)
    start_at_goal: float = param(0.25, "Fraction of imagined rollouts whose goal is where their start state already is, so that the policy learns to stay at a goal, not only to approach it (goal-conditioned tasks).", low=0.0, high=1.0)


class PolicyGradient(PolicyMethod):
    """``algo`` (PPO by default) on imagined rollouts from recorded states, as if the model
    were the environment (seed 000: model-free optimisation with a model)."""

    name = "policy_gradient"
    Config = ImaginedConfig
    metric = "imagined return"

    @classmethod
    def policy_settings(cls, config: ImaginedConfig) -> dict[str, Any]:
        # a 256 × 2 ReLU policy, against PolicyConfig's 64 × 2 tanh, on ArmReach (3 seeds):
        # PPO after 2 000 real steps 86 % (73/87/97) against 60 % (60/50/70) on 30 targets;
        # MBRL 2.0 87 % (87/90/83) against 82 % (73/77/97) after 1 000, 90 % on the training
        # targets after 300 real steps on every seed against 700, and
        # 9 and 10 of episodes 5-14 within 2 cm in bringup sim_pg (10, 10, 9, 8, 7, 6)
        rollouts, horizon = config.imagined_rollouts, config.imagined_horizon
        return {"n_envs": rollouts, "n_steps": horizon, "batch_size": min(256, rollouts * horizon), **MODEL_BASED_NETWORK}

    @classmethod
    def round(cls, trainer: ImaginedPolicyTrainer, model: DynamicsModel, config: ImaginedConfig, data: RoundData) -> float:
        return trainer.improve(model, data.states, config.updates_per_round, data.past, config.start_at_goal)


@dataclass(frozen=True)
class BackpropConfig(ImaginedConfig):
    """Settings of MBRL 2.0 in the trainer: its updates are cheaper than PPO's (one
    backward pass each), and more of them per round measured better on ArmReach (seed 0,
    1 000 real steps: 90 % success with 20, 100 % with 50)."""

    updates_per_round: int = param(50, "Policy updates per round.", low=1, high=100_000)


class Backprop(PolicyGradient):
    """MBRL 2.0 (seed 000): the imagined return differentiated through the reparameterised
    model into the policy's weights. Its policy is tanh-squashed (the gradient never pushes
    an action past a bound it cannot reach) and takes larger steps than PPO's (the gradient
    is exact, not a score-function estimate)."""

    name = "backprop"
    Config = BackpropConfig
    imagined = "backprop"

    @classmethod
    def policy_settings(cls, config: BackpropConfig) -> dict[str, Any]:
        return {**super().policy_settings(config), "squash": True, "learning_rate": 3e-3}


@dataclass(frozen=True)
class DAggerConfig(Config):
    """Settings of DAgger in the trainer."""

    epochs: int = param(EPOCHS, "Behaviour-cloning epochs per round.", low=1, high=100_000)
    members: int = param(MEMBERS, "Policy networks cloned side by side each round, each from its own initialisation; the policy acts with their mean.", low=1, high=64, read_only=True)
    relabelled_goals: int = param(1, "Goals from the arm's workspace each new episode's states are labelled again for.", low=0, high=1000, read_only=True)
    hindsight_goals: int = param(2, "Places each new episode reached that its states are labelled again for (hindsight goals).", low=0, high=1000, read_only=True)
    stay_goals: bool = param(True, "Label each new episode's states once more with the goal where each already is: the expert's actions for staying at a goal.", read_only=True)
    device: str = param("cpu", "Where behaviour cloning runs: cpu, cuda, or auto (cuda where there is a GPU); the policy comes back to the CPU.",
                        choices=DEVICES, read_only=True)


class DAgger(PolicyMethod):
    """The new episodes' states, and copies of them with relabelled and hindsight goals,
    labelled with the MPC planner's actions through the current model (each episode and its
    copies planned together, as the planner plans an episode); a new policy cloned from every label so far. With the policy controller
    driving (graph ``sim_pg``), the states are the policy's own: DAgger (seed 002), the same
    :func:`~mbrl_control.policies.imitation.aggregate` and
    :func:`~mbrl_control.policies.imitation.clone` as the library's ``dagger``."""

    name = "dagger"
    Config = DAggerConfig
    metric = "behaviour-cloning NLL"
    # The expert plans through the model's mean: on ArmReach (benchmarks/model_based_policies.py,
    # seeds 0-3, 30 targets) its clones scored 97/87/100/90 % against 90/67/100/97 % for labels
    # planned by trajectory sampling, the controller's default, whose particle noise moves CEM's
    # elites from one state to the next; and it labels a sixth faster.
    expert_settings = {"propagation": "expectation"}
    needs_new_data = True

    @classmethod
    def policy_settings(cls, config: DAggerConfig) -> dict[str, Any]:
        return {**MODEL_BASED_NETWORK, "members": config.members}  # the library's dagger() clones the same network

    @classmethod
    def round(cls, trainer: ImaginedPolicyTrainer, model: DynamicsModel, config: DAggerConfig, data: RoundData) -> float:
        if len(data.episodes):
            rng, goals = np.random.default_rng(trainer.cfg.seed + trainer.rounds), trainer.goals
            relabelling = Relabelling(0 if goals is None else goals.shape[1], config.relabelled_goals, config.hindsight_goals,
                                      None if goals is None else lambda: goals[rng.integers(len(goals))], data.achieved_goal,
                                      config.stay_goals)
            expert = data.expert(model)
            if trainer.rounds:  # the last round's policy among the planner's samples (proposals > 0), as dagger()'s policy_to_expert
                expert.set_policy(trainer.policy)
            aggregate(data.labels, expert.label, data.episodes, relabelling, rng)
        space = trainer.action_space
        trainer.policy, losses = clone(trainer.observation_space.shape[0], space.low, space.high, trainer.cfg, data.labels,
                                       trainer.rounds, config.epochs, device=config.device)
        trainer.rounds += 1
        return losses[-1]
