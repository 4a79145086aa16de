"""``pg_trainer``: a policy trained from the latest model and the recorded episodes, for the
policy controller (the cheap runtime of a low-cost arm's computer).

Models come from ``mbrl/model`` (the dynamics learner's latched checkpoint; one that fails
to load is refused and the last good one kept), episodes from ``mbrl/episodes``. Every
``round_period`` seconds, once a model and ``min_transitions`` are there, a round runs in a
worker thread (the node keeps receiving), by ``method``: any of
:data:`~mbrl_control.loops.policy_methods.POLICY_METHODS`, whose own settings are
``method.*``:

* ``policy_gradient``: ``method.updates_per_round`` updates of ``policy.algo`` (PPO by
  default) on imagined rollouts through the model from recorded states, with goals drawn
  from the task's workspace;
* ``backprop`` (the default, :data:`~mbrl_control.loops.policy_methods.DEFAULT_METHOD`):
  as many MBRL 2.0 steps through the model;
* ``dagger``: the states of new episodes are labelled with the MPC planner's actions
  through the current model (the planner's settings, ``optimizer.*`` among them), and the
  policy is cloned from every label so far. Run with the policy controller driving (graph
  ``sim_pg``), the states are the policy's own: DAgger.

Each round's policy is saved atomically to ``<out_dir>/policy.pt`` and its bytes published
on ``mbrl/policy`` (latched), where ``policy_controller`` hot-swaps it. On restart the
trainer continues from ``policy.pt`` and its labels, and republishes the policy.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from std_msgs.msg import UInt8MultiArray

from mbrl_control.arm.env import ArmReach
from mbrl_control.arm.reach import ReachConfig
from mbrl_control.arm.sim import SimConfig
from mbrl_control.checkpoint import CheckpointError
from mbrl_control.config import Config, param
from mbrl_control.data.transitions import TransitionDataset
from mbrl_control.loops.policy_methods import DEFAULT_METHOD, POLICY_METHODS, RoundData
from mbrl_control.loops.policy_search import GOAL_POOL, ImaginedPolicyTrainer
from mbrl_control.models import FitCancelled, cancellable, load_model
from mbrl_control.models.dynamics import DynamicsModel
from mbrl_control.nodes.common import (
    CONTROL, DIAGNOSTICS, EPISODES, EPISODES_TOPIC, LATCHED, MODEL_TOPIC, POLICY_TOPIC, LatestCheckpoint, Worker, warm_up_torch,
    bind_arm, bytes_message, new_episodes, spin, status,
)
from mbrl_control.nodes.params import ParameterBinding
from mbrl_control.planning.mpc import MPCConfig, MPCController
from mbrl_control.planning.optimizers import OPTIMIZERS
from mbrl_control.policies.config import PolicyConfig
from mbrl_control.policies.networks import goal_inputs
from mbrl_control.policies.train import save_policy

POLICY_FIELDS = ("algo", "seed", "hidden", "layers", "activation", "squash", "relative_goal", "goal_scale", "learning_rate")


@dataclass(frozen=True)
class TrainerConfig(Config):
    """Settings of the policy trainer."""

    method: str = param(DEFAULT_METHOD, "How the policy learns (any of loops.POLICY_METHODS): policy gradient on imagined rollouts through the model, backprop through the model (MBRL 2.0), or DAgger from the MPC planner.",
                        choices=POLICY_METHODS, read_only=True, ros_name="method.type")
    out_dir: str = param("runs/ros/trainer", "Folder of policy.pt and the DAgger labels.", read_only=True)
    min_transitions: int = param(100, "Recorded transitions needed before the first round.", low=1)
    round_period: float = param(5.0, "Least seconds between the starts of two rounds.", low=0.0, high=1e6)
    threads: int = param(1, "torch threads for training (1 leaves the other core of a 2-core computer to the controller).", low=1, high=256)
    nice: int = param(10, "Niceness added to the training thread (0-19): rounds take the CPU the controller and the driver leave (Linux).", low=0, high=19)


class PolicyTrainerNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("pg_trainer", **kwargs)
        self.arm_params, self.arm = bind_arm(self)
        self.params = ParameterBinding(self, TrainerConfig())
        config = self.params[TrainerConfig]
        self.method = POLICY_METHODS[config.method]
        self.method_params = ParameterBinding(self, self.method.Config(), prefix="method")
        task = ArmReach(sim=self.arm_params[SimConfig].replace(joints=self.arm.controller_joints), task=self.arm_params[ReachConfig])
        # the policy's defaults: the method's, with the goal difference among the inputs (ArmReach's layout)
        policy = PolicyConfig(relative_goal=goal_inputs(task, self.arm.obs_dim)).replace(
            **self.method.policy_settings(self.method_params[self.method.Config]))
        self.policy_params = ParameterBinding(self, (policy, POLICY_FIELDS), read_only=POLICY_FIELDS, prefix="policy")
        if self.method.expert_settings is not None:  # the planner's settings, through the current model
            planner = tuple(name for name in MPCConfig.field_names() if name not in ("seed", "threads"))  # the trainer's serve
            self.mpc_params = ParameterBinding(self, (MPCConfig(**self.method.expert_settings), planner), read_only=("optimizer",))
            self.optimizer_params = ParameterBinding(self, OPTIMIZERS[self.mpc_params[MPCConfig].optimizer].Config(), prefix="optimizer")
        self.out_dir = Path(config.out_dir)
        self.policy_path, self.labels_path = self.out_dir / "policy.pt", self.out_dir / "labels.npz"
        self.trainer = self._make_trainer(task)
        self.lock = threading.Lock()  # guards dataset
        self.dataset = TransitionDataset(self.arm.obs_dim, self.arm.n)
        self.labels = self._load_labels()
        self.episodes_seen = set(self.labels.episodes.tolist())  # labelled already
        self.worker = Worker("training round")
        self.stop_training = threading.Event()
        warm_up_torch()  # before any fit: what torch imports at its first optimiser step cannot be cancelled
        self.last_round = -float("inf")
        self.trained_on: tuple[int, int] = (-1, -1)  # (models loaded, transitions) of the last round
        self.policy_pub = self.create_publisher(UInt8MultiArray, POLICY_TOPIC, LATCHED)
        self.diagnostics = self.create_publisher(DiagnosticArray, DIAGNOSTICS, CONTROL)
        self.model: LatestCheckpoint[DynamicsModel] = LatestCheckpoint(
            self, MODEL_TOPIC, lambda source: load_model(source, self.arm.obs_dim, self.arm.n, derive=self.arm.derive), "model")
        self.create_subscription(UInt8MultiArray, EPISODES_TOPIC, self.on_episode, EPISODES)
        self._resume()
        # on the computer's clock, not /clock: a learner outside the arms' namespaces hears no /clock,
        # and its schedule is wall-clock work anyway
        self.create_timer(0.5, self.maybe_train, clock=Clock(clock_type=ClockType.STEADY_TIME))

    def _make_trainer(self, task: ArmReach) -> ImaginedPolicyTrainer:
        """The policy, its learner and the task: observation and action spaces, reward and
        a pool of goals from the arm's reachable workspace (the simulator's target sampler
        on the same URDF)."""
        cfg = self.policy_params[PolicyConfig]  # the method's settings, the task's goal inputs, the policy.* parameters
        task.reset(seed=cfg.seed)
        goals = np.array([task.sample_goal() for _ in range(GOAL_POOL)])
        space = task.observation_space, task.action_space
        task.close()
        return ImaginedPolicyTrainer(*space, self.arm.reward_fn, self.method.imagined, cfg, goals)

    # -- state on disk -----------------------------------------------------------------
    def _load_labels(self) -> TransitionDataset:
        """DAgger's labelled states so far (obs, expert action), kept as a dataset."""
        try:
            return TransitionDataset.resume(self.labels_path, self.arm.obs_dim, self.arm.n)
        except CheckpointError as err:
            self.get_logger().error(f"labels not resumed, starting anew: {err}")
            return TransitionDataset(self.arm.obs_dim, self.arm.n)

    def _resume(self) -> None:
        if not self.policy_path.exists():
            return
        try:
            self.trainer.resume(self.policy_path)
        except CheckpointError as err:
            self.get_logger().error(f"{self.policy_path} not resumed, training a new policy: {err}")
            return
        self.policy_pub.publish(bytes_message(self.policy_path.read_bytes()))
        self.get_logger().info(f"resumed and republished {self.policy_path}")

    # -- data --------------------------------------------------------------------------
    def on_episode(self, msg: UInt8MultiArray) -> None:
        with self.lock:
            part = new_episodes(self, msg, self.arm, self.episodes_seen | set(self.dataset.episodes.tolist()))
            if part is not None:
                self.dataset.append(part.obs, part.act, part.next_obs, part.episode, part.time)

    # -- training rounds ---------------------------------------------------------------
    def maybe_train(self) -> None:
        config = self.params[TrainerConfig]
        if self.worker.busy:
            return
        model = self.model.value
        with self.lock:
            size = len(self.dataset) + len(self.labels)
        if model is None or size < config.min_transitions or time.monotonic() - self.last_round < config.round_period:
            return
        if self.method.needs_new_data and (self.model.loaded, size) == self.trained_on:
            return  # nothing new to label or clone
        self.last_round = time.monotonic()
        self.trained_on = (self.model.loaded, size)
        self.worker.start(self.train_round, model, nice=self.params[TrainerConfig].nice)

    def train_round(self, model: DynamicsModel) -> None:
        """Worker thread: one round; save, publish, report."""
        config = self.params[TrainerConfig]
        torch.set_num_threads(config.threads)
        start = time.monotonic()
        try:
            with self.lock:
                episodes = self.dataset
                if self.method.expert_settings is not None:  # what it labels lives on in the labels
                    self.dataset = TransitionDataset(self.arm.obs_dim, self.arm.n)
                if len(episodes):  # imagined rollouts start from them, with the actions in flight there
                    states, past = episodes.obs.copy(), episodes.action_history(model.history)
                else:
                    states, past = self.labels.obs.copy(), None
            with cancellable(self.stop_training):
                metric = self.method.round(self.trainer, model, self.method_params[self.method.Config],
                                           RoundData(states, episodes, self.labels, self._expert, ArmReach.achieved_goal, past))
            if self.method.expert_settings is not None and len(episodes):
                self.episodes_seen.update(episodes.episodes.tolist())
                self.labels.save(self.labels_path)
            save_policy(self.trainer.result(), self.policy_path)
        except FitCancelled:  # shutting down: the last saved policy and labels stay
            return
        except Exception as err:  # a failed round keeps the last policy
            self.get_logger().error(f"training round failed, last policy kept: {type(err).__name__}: {err}")
            self.diagnostics.publish(status(self, "training", f"failed: {err}", {}, DiagnosticStatus.ERROR))
            return
        seconds = time.monotonic() - start
        if not self.context.ok():
            print(f"[pg_trainer] policy saved to {self.policy_path}", file=sys.stderr, flush=True)
            return
        self.policy_pub.publish(bytes_message(self.policy_path.read_bytes()))
        what = self.method.metric
        values = {"round": self.trainer.rounds, what: metric, "seconds": seconds, "imagined_steps": self.trainer.imagined_steps,
                  "labels": len(self.labels), "model_transitions": model.dataset_size}
        self.diagnostics.publish(status(self, "training", f"{self.method.name} round {self.trainer.rounds}", values))
        self.get_logger().info(f"round {self.trainer.rounds} ({self.method.name}): {what} {metric:.3f}, {seconds:.1f} s; policy published")

    def _expert(self, model: DynamicsModel) -> MPCController:
        """The MPC planner through ``model``, with the planner settings declared here."""
        mpc_config = self.mpc_params[MPCConfig]
        optimizer = self.optimizer_params[OPTIMIZERS[mpc_config.optimizer].Config].to_dict()
        return MPCController(model, self.arm.reward_fn, -np.ones(self.arm.n), np.ones(self.arm.n),
                             config=mpc_config.replace(time_budget=0.0), optimizer_overrides=optimizer)

    def close(self) -> None:
        self.stop_training.set()
        self.worker.join(self.get_name())


def main(args: list[str] | None = None) -> None:
    spin(PolicyTrainerNode, args)


if __name__ == "__main__":
    main()
