"""``mpc_planner``: MPC through the learned model, a command every control tick.

Each tick (``control_rate``, simulated time under ``use_sim_time``) reads the newest joint
state and target, plans with the configured optimiser and propagation
(:class:`mbrl_control.planning.mpc.MPCController`) and publishes the first action as
absolute joint targets on ``arm_controller/commands``. Until a model arrives it explores
with bounded random actions. Models come from ``mbrl/model`` (the dynamics learner's
latched checkpoint) or ``model_path`` and are swapped in between ticks; one that fails to
load or fits another arm is refused and the last good model stays. Planning statistics
(latency, achieved rate, deadline misses) go to ``/diagnostics``.

Parameters: every field of ``MPCConfig`` and of the chosen optimiser's config (``horizon``,
``population``, ``iterations``, …) changes live, on the next tick; ``optimizer`` is fixed
at start.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from rclpy.node import Node
from std_msgs.msg import UInt8MultiArray

from mbrl_control.checkpoint import CheckpointError
from mbrl_control.config import Config, param
from mbrl_control.models import load_model
from mbrl_control.models.base import DynamicsModel
from mbrl_control.nodes.common import LATCHED, MODEL_TOPIC, bind_arm, spin
from mbrl_control.nodes.control_loop import ControlLoop
from mbrl_control.nodes.params import ParameterBinding
from mbrl_control.planning.mpc import OPTIMIZER_CONFIGS, MPCConfig, MPCController


@dataclass(frozen=True)
class PlannerNodeConfig(Config):
    """Settings of the planner node itself."""

    control_rate: float = param(20.0, "Commands per second (the servo bus rate).", low=0.5, high=1000.0)
    exploration: float = param(1.0, "Half-width of the uniform random actions sent before the first model arrives (1 = the whole action range).", low=0.0, high=1.0)
    model_path: str = param("", "Model checkpoint to plan with from the start (mbrl-control fit / train); empty: wait for mbrl/model.", read_only=True)
    stats_every: int = param(20, "Ticks between planning statistics on /diagnostics.", low=1, high=100_000)


class MPCPlannerNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("mpc_planner", **kwargs)
        self.arm_params, self.arm = bind_arm(self)
        self.params = ParameterBinding(self, MPCConfig(), PlannerNodeConfig(), read_only=("optimizer",))
        optimizer = self.params[MPCConfig].optimizer
        self.optimizer_params = ParameterBinding(self, OPTIMIZER_CONFIGS[optimizer]())
        self.loop = ControlLoop(self, self.arm)
        self.rng = np.random.default_rng(self.params[MPCConfig].seed)  # exploration
        self.model: DynamicsModel | None = None
        self.controller: MPCController | None = None
        self.models_loaded = 0
        path = self.params[PlannerNodeConfig].model_path
        if path:
            self.set_model(path, path)
            if self.model is None:
                raise CheckpointError(f"model_path = {path!r}: could not be loaded (see the error above)")
        self.create_subscription(UInt8MultiArray, MODEL_TOPIC, self.on_model, LATCHED)
        self._versions = (-1, -1)
        self.timer = None
        self._rate = 0.0
        self.create_timer_at_rate()

    def create_timer_at_rate(self) -> None:
        rate = self.params[PlannerNodeConfig].control_rate
        if rate != self._rate:
            if self.timer is not None:
                self.destroy_timer(self.timer)
            self.timer, self._rate = self.create_timer(1.0 / rate, self.tick), rate

    def on_model(self, msg: UInt8MultiArray) -> None:
        self.set_model(bytes(msg.data), f"{MODEL_TOPIC} message")

    def set_model(self, source: str | bytes, name: str) -> None:
        """Load a model; keep the last good one when this one fails."""
        try:
            model = load_model(source, self.arm.obs_dim, self.arm.n)
        except CheckpointError as err:
            self.get_logger().error(f"model from {name} refused, keeping the last good model: {err}")
            return
        self.model = model
        self.models_loaded += 1
        if self.controller is not None:
            self.controller.set_model(model)
        self.get_logger().info(f"planning with a {model.name} model fitted on {model.dataset_size} transitions ({name})")

    def _controller(self) -> MPCController | None:
        """The controller (None before the first model), reconfigured after a parameter change."""
        if self.model is None:
            return None
        versions = (self.params.version, self.optimizer_params.version)
        config = self.params[MPCConfig]
        optimizer = self.optimizer_params[OPTIMIZER_CONFIGS[config.optimizer]].to_dict()
        if self.controller is None:
            self.controller = MPCController(self.model, self.arm.reward_fn, -np.ones(self.arm.n), np.ones(self.arm.n),
                                            config=config, optimizer_overrides=optimizer)
        elif versions != self._versions:
            self.controller.configure(config, optimizer)
        self._versions = versions
        return self.controller

    def tick(self) -> None:
        started = time.monotonic()
        self.create_timer_at_rate()
        obs, new_episode = self.loop.observation()
        if obs is None:
            return
        controller = self._controller()
        if controller is None:
            width = self.params[PlannerNodeConfig].exploration
            action = self.rng.uniform(-width, width, self.arm.n)
        else:
            if new_episode:
                controller.reset()
            action = controller.act(obs.astype(np.float32))
        self.loop.send(action, started, 1.0 / self._rate)
        self.loop.report(self.params[PlannerNodeConfig].stats_every, {
            "mode": "explore" if controller is None else "mpc", "models_loaded": self.models_loaded,
            "fallbacks": controller.fallbacks if controller else 0,
        })


def main(args: list[str] | None = None) -> None:
    spin(MPCPlannerNode, args)


if __name__ == "__main__":
    main()
