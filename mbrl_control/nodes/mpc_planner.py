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

from dataclasses import dataclass
from typing import Any

import numpy as np
from rclpy.node import Node

from mbrl_control.config import Config, param
from mbrl_control.models import load_model
from mbrl_control.models.dynamics import DynamicsModel
from mbrl_control.nodes.common import MODEL_TOPIC, LatestCheckpoint, bind_arm, spin
from mbrl_control.nodes.control_loop import ControlLoop
from mbrl_control.nodes.params import ParameterBinding
from mbrl_control.planning.mpc import MPCConfig, MPCController
from mbrl_control.planning.optimizers import OPTIMIZERS


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
        self.optimizer_params = ParameterBinding(self, OPTIMIZERS[self.params[MPCConfig].optimizer].Config(), prefix="optimizer")
        self.rng = np.random.default_rng(self.params[MPCConfig].seed)  # exploration
        self.controller: MPCController | None = None
        self._versions = (-1, -1)
        self.model = LatestCheckpoint(
            self, MODEL_TOPIC, lambda source: load_model(source, self.arm.obs_dim, self.arm.n, derive=self.arm.derive), "model",
            path=self.params[PlannerNodeConfig].model_path, on_change=self.on_model,
        )
        self.loop = ControlLoop(
            self, self.arm, self.act, rate=lambda: self.params[PlannerNodeConfig].control_rate,
            stats_every=lambda: self.params[PlannerNodeConfig].stats_every,
            extra=lambda: {"mode": "explore" if self.controller is None else "mpc", "models_loaded": self.model.loaded,
                           "model_transitions": self.model.value.dataset_size if self.model.value is not None else 0,
                           "search_fraction": self.controller.search_fraction if self.controller else 1.0,
                           "fallbacks": self.controller.fallbacks if self.controller else 0},
        )

    def on_model(self, model: DynamicsModel) -> None:
        """Swap the new model in from the next tick (the warm start is kept)."""
        if self.controller is not None:
            self.controller.set_model(model)
        self.get_logger().info(f"planning with a {model.name} model fitted on {model.dataset_size} transitions")

    def _controller(self) -> MPCController | None:
        """The controller (None before the first model), reconfigured after a parameter change."""
        if self.model.value is None:
            return None
        versions = (self.params.version, self.optimizer_params.version)
        if self.controller is None or versions != self._versions:
            config = self.params[MPCConfig]
            optimizer = self.optimizer_params[OPTIMIZERS[config.optimizer].Config].to_dict()
            if self.controller is None:
                self.controller = MPCController(self.model.value, self.arm.reward_fn, -np.ones(self.arm.n), np.ones(self.arm.n),
                                                config=config, optimizer_overrides=optimizer)
            else:
                self.controller.configure(config, optimizer)
            self._versions = versions
        return self.controller

    def act(self, obs: np.ndarray, new_episode: bool) -> np.ndarray:
        """MPC's action, or a bounded random one before the first model."""
        controller = self._controller()
        if controller is None:
            width = self.params[PlannerNodeConfig].exploration
            return self.rng.uniform(-width, width, self.arm.n)
        if new_episode:
            controller.reset()
        return controller.act(obs)


def main(args: list[str] | None = None) -> None:
    spin(MPCPlannerNode, args)


if __name__ == "__main__":
    main()
