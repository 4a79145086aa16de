"""``dynamics_learner``: (re)fits the dynamics model as episodes arrive.

Episodes come from ``mbrl/episodes`` (the data collector's ``.npz`` bytes) and are kept in
``<out_dir>/dataset.npz``. With ``arms`` (namespaces: ``[arm1, arm2]``) one learner serves
several arms: it takes each arm's ``/<arm>/mbrl/episodes``, keeps each arm's dataset apart
(``<out_dir>/<arm>/dataset.npz``), fits one model on all of them and publishes it on every
arm's ``/<arm>/mbrl/model``; each arm's graph runs in its namespace unchanged. A fit runs in a worker thread so the node keeps receiving data
and answering parameter requests; when it succeeds the model is saved atomically to
``<out_dir>/model.pt`` and its bytes published on ``mbrl/model`` (latched: a planner that
starts later, on another machine, gets the newest model). Fit metrics go to
``/diagnostics``. On restart it reloads the dataset and republishes the last model.

Parameters: ``model`` (any registered model: ensemble, pe, de, mlp, gp) is fixed at start;
the chosen model's settings, ``min_transitions``, ``retrain_period`` and ``fit_seconds``
change live (the next fit uses them). With ``warm_start`` (the default) a fit continues
from the last model while its settings are unchanged. A fit trains for at most
``fit_seconds`` and publishes what it has; the next one continues it, new data or not (an
ensemble fit to convergence took 15-30 s on a 2-core computer next to the planner: the
arm ran on a model several episodes old). The fitting thread runs at ``nice`` below the
node, so the planner keeps its core.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from std_msgs.msg import UInt8MultiArray

from mbrl_control.checkpoint import CheckpointError
from mbrl_control.config import Config, param
from mbrl_control.data.transitions import TransitionDataset
from mbrl_control.devices import resolve_device
from mbrl_control.models import REGRESSORS, DynamicsModel, FitCancelled, cancellable, load_model, make_model, time_limited
from mbrl_control.nodes.common import (
    CONTROL, DIAGNOSTICS, EPISODES, EPISODES_TOPIC, LATCHED, MODEL_TOPIC, Worker, arm_topic, bind_arm, bytes_message, new_episodes,
    spin, status, warm_up_torch,
)
from mbrl_control.nodes.params import ParameterBinding


@dataclass(frozen=True)
class LearnerConfig(Config):
    """Settings of the dynamics learner."""

    model: str = param("ensemble", "Model type (any of models.REGRESSORS).", choices=REGRESSORS, read_only=True, ros_name="model.type")
    out_dir: str = param("runs/ros/learner", "Folder of the dataset copy and the model checkpoint.", read_only=True)
    min_transitions: int = param(50, "Transitions needed before the first fit.", low=1)
    retrain_period: float = param(0.0, "Least seconds between fits; 0 = fit after every new episode.", low=0.0, high=1e6)
    threads: int = param(1, "torch threads for fitting (1 leaves the other core of a 2-core computer to the planner).", low=1, high=256)
    fit_seconds: float = param(2.5, "Most seconds a fit trains before its model is published (0: until it converges); the next fit continues from it (warm_start), so the arm gets a better model every few seconds instead of a converged one late.", low=0.0, high=1e6)
    nice: int = param(10, "Niceness added to the fitting thread (0-19): fits take the CPU the planner and the driver leave (Linux).", low=0, high=19)
    arms: tuple = param(("",), "Namespaces of the arms whose episodes this learner fits and whose planners get its model ('': its own namespace).", read_only=True)


class DynamicsLearnerNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("dynamics_learner", **kwargs)
        self.arm_params, self.arm = bind_arm(self)
        self.params = ParameterBinding(self, LearnerConfig())
        model_config = REGRESSORS[self.params[LearnerConfig].model].Config().replace(**self.arm.MODEL_LAYOUT)
        self.model_params = ParameterBinding(self, model_config, prefix="model")
        _, note = resolve_device(self.model_params[type(model_config)].device)  # cuda where there is none: refused now
        if note:
            self.get_logger().info(note)
        self.last_model: DynamicsModel | None = None  # the last good fit, which the next one may continue
        self.out_dir = Path(self.params[LearnerConfig].out_dir)
        self.model_path = self.out_dir / "model.pt"
        self.lock = threading.Lock()  # guards datasets
        self.datasets = {arm: self._resume(arm) for arm in self.params[LearnerConfig].arms}  # each arm's apart
        self.fitted_size = 0
        self.unfinished = False  # the last fit ran out of fit_seconds: the next continues it, new data or not
        self.last_fit = -float("inf")
        self.fits = 0
        self.worker = Worker("fit")
        warm_up_torch()  # before any fit: what torch imports at its first optimiser step cannot be cancelled
        self.stop_fitting = threading.Event()
        self.model_pubs = [self.create_publisher(UInt8MultiArray, arm_topic(arm, MODEL_TOPIC), LATCHED) for arm in self.datasets]
        self.diagnostics = self.create_publisher(DiagnosticArray, DIAGNOSTICS, CONTROL)
        for arm in self.datasets:
            self.create_subscription(UInt8MultiArray, arm_topic(arm, EPISODES_TOPIC), lambda msg, arm=arm: self.on_episode(msg, arm), EPISODES)
        self._republish()
        # on the computer's clock, not /clock: a learner outside the arms' namespaces hears no /clock,
        # and its schedule is wall-clock work anyway
        self.create_timer(0.5, self.maybe_fit, clock=Clock(clock_type=ClockType.STEADY_TIME))

    def _resume(self, arm: str) -> TransitionDataset:
        """The dataset of ``arm`` so far (empty at the first start)."""
        dataset = TransitionDataset.resume(self.dataset_path(arm), self.arm.obs_dim, self.arm.n)
        if len(dataset):
            self.get_logger().info(f"resuming {dataset}" + (f" of {arm}" if arm else ""))
        return dataset

    def dataset_path(self, arm: str) -> Path:
        return self.out_dir / arm.strip("/") / "dataset.npz"

    @property
    def dataset(self) -> TransitionDataset:
        """Every arm's transitions in one dataset (episode ids kept apart), what a fit sees."""
        with self.lock:
            parts = list(self.datasets.values())
            return parts[0].subset(slice(None)) if len(parts) == 1 else TransitionDataset.concatenate(parts)

    def publish_model(self) -> None:
        data = self.model_path.read_bytes()
        for publisher in self.model_pubs:
            publisher.publish(bytes_message(data))

    def _republish(self) -> None:
        if not self.model_path.exists():
            return
        try:
            model = load_model(self.model_path, self.arm.obs_dim, self.arm.n, derive=self.arm.derive)
        except CheckpointError as err:
            self.get_logger().error(f"last model not republished: {err}")
            return
        self.fitted_size = model.dataset_size
        self.last_model = model
        self.publish_model()
        self.get_logger().info(f"republished {self.model_path} ({model.dataset_size} transitions)")

    def on_episode(self, msg: UInt8MultiArray, arm: str) -> None:
        dataset = self.datasets[arm]
        part = new_episodes(self, msg, self.arm, set(dataset.episodes.tolist()))
        if part is None:
            return
        new = part.episodes.tolist()
        path = self.dataset_path(arm)
        with self.lock:
            dataset.append(part.obs, part.act, part.next_obs, part.episode, part.time)
            try:
                dataset.save(path)
            except OSError as err:  # a full disk: the data stays in memory, the next episode saves it
                self.get_logger().error(f"{path} not saved, {len(dataset)} transitions kept in memory: {err}")
        self.get_logger().info(f"episode(s) {new}" + (f" of {arm}" if arm else "") + f": {len(part)} transitions; dataset {len(dataset)}")

    def maybe_fit(self) -> None:
        config = self.params[LearnerConfig]
        if self.worker.busy:
            return
        with self.lock:
            size = sum(len(dataset) for dataset in self.datasets.values())
        if size < config.min_transitions or (size == self.fitted_size and not self.unfinished):
            return
        if time.monotonic() - self.last_fit < config.retrain_period:
            return
        data = self.dataset
        self.last_fit = time.monotonic()
        self.worker.start(self.fit, data, nice=config.nice)

    def fit(self, data: TransitionDataset) -> None:
        """Worker thread: fit a model on ``data`` (a copy of the last one while its settings
        stand, so ``warm_start`` can continue it; else a new one); save, publish, report."""
        name = self.params[LearnerConfig].model
        config = self.model_params[REGRESSORS[name].Config]
        torch.set_num_threads(self.params[LearnerConfig].threads)
        try:
            last = self.last_model
            if last is not None and last.name == REGRESSORS[name].name and last.config == config:
                model = last.copy()
            else:
                model = make_model(name, self.arm.obs_dim, self.arm.n, derive=self.arm.derive, bounds=self.arm.model_bounds, **config.to_dict())
            with cancellable(self.stop_fitting), time_limited(self.params[LearnerConfig].fit_seconds):
                report = model.fit(data)
            model.save(self.model_path)
        except FitCancelled:  # shutting down: the last good checkpoint stays
            print(f"[dynamics_learner] fit on {len(data)} transitions cancelled at shutdown; {self.model_path} is the last good model",
                  file=sys.stderr, flush=True)
            return
        except Exception as err:  # a failed fit keeps the last good model
            self.get_logger().error(f"fit on {len(data)} transitions failed, last model kept: {type(err).__name__}: {err}")
            self.diagnostics.publish(status(self, "fit", f"failed: {err}", {"transitions": len(data)}, DiagnosticStatus.ERROR))
            self.fitted_size = len(data)  # not again on the same data
            return
        self.fitted_size = len(data)
        self.unfinished = report.timed_out and config.warm_start
        self.fits += 1
        self.last_model = model
        if not self.context.ok():  # shut down while fitting: the checkpoint is on disk for the restart
            print(f"[dynamics_learner] fit on {len(data)} transitions saved to {self.model_path}", file=sys.stderr, flush=True)
            return
        self.publish_model()
        val = report.val_loss[report.best_epoch] if report.val_loss and report.best_epoch >= 0 else float("nan")
        values = {"transitions": len(data), "episodes": len(data.episodes), "seconds": report.seconds,
                  "train_loss": report.train_loss[-1] if report.train_loss else float("nan"), "val_loss": val,
                  "epochs": report.epochs, "fits": self.fits}
        self.diagnostics.publish(status(self, "fit", f"{model.name} on {len(data)} transitions", values))
        self.get_logger().info(f"fit {self.fits}: {model.name} on {len(data)} transitions in {report.seconds:.1f} s"
                               + (" (its time; the next fit continues it)" if report.timed_out else ""))

    def close(self) -> None:
        """Cancel a fit in progress (it stops at its next epoch) and wait for it; the last
        good checkpoint stays (checkpoints are written atomically)."""
        self.stop_fitting.set()
        self.worker.join(self.get_name())


def main(args: list[str] | None = None) -> None:
    spin(DynamicsLearnerNode, args)


if __name__ == "__main__":
    main()
