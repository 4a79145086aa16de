"""``policy_controller``: a trained policy at control rate, the cheap runtime for a
low-cost arm's computer: a loaded policy runs as a numpy snapshot (:class:`DeployedPolicy`,
about 0.1 ms per action where MPC takes tens of milliseconds).

Policies come from ``policy_path`` (``mbrl-control policy`` writes ``policy.pt``) or from
``mbrl/policy`` (a trainer's latched checkpoint bytes) and are swapped in between ticks;
one that fails to load or was trained for another arm is refused and the last good policy
stays. Before any policy arrives the arm is not commanded (it holds its position), or,
with ``exploration`` > 0, moves by bounded random actions (the first data for a policy
learnt through a model, graph ``sim_pg``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from rclpy.node import Node

from mbrl_control.config import Config, param
from mbrl_control.nodes.common import POLICY_TOPIC, LatestCheckpoint, bind_arm, spin
from mbrl_control.nodes.control_loop import ControlLoop
from mbrl_control.nodes.params import ParameterBinding
from mbrl_control.policies.deployed import DeployedPolicy
from mbrl_control.policies.train import load_policy


@dataclass(frozen=True)
class PolicyControllerConfig(Config):
    """Settings of the policy controller."""

    control_rate: float = param(20.0, "Commands per second (the servo bus rate).", low=0.5, high=1000.0)
    policy_path: str = param("", "Policy checkpoint to run from the start (mbrl-control policy); empty: wait for mbrl/policy.", read_only=True)
    stats_every: int = param(20, "Ticks between control-loop statistics on /diagnostics.", low=1, high=100_000)
    exploration: float = param(0.0, "Half-width of the uniform random actions sent before the first policy arrives (0: send nothing, the arm holds).", low=0.0, high=1.0)
    seed: int = param(0, "Seed of the exploration.", low=0, read_only=True)


class PolicyControllerNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("policy_controller", **kwargs)
        self.arm_params, self.arm = bind_arm(self)
        self.params = ParameterBinding(self, PolicyControllerConfig())
        self.rng = np.random.default_rng(self.params[PolicyControllerConfig].seed)
        self.policy: LatestCheckpoint[DeployedPolicy] = LatestCheckpoint(
            self, POLICY_TOPIC, lambda source: DeployedPolicy(load_policy(source, self.arm.obs_dim, self.arm.n)), "policy",
            path=self.params[PolicyControllerConfig].policy_path,
        )
        self.loop = ControlLoop(
            self, self.arm, self.act, rate=lambda: self.params[PolicyControllerConfig].control_rate,
            stats_every=lambda: self.params[PolicyControllerConfig].stats_every,
            extra=lambda: {"mode": "policy", "policies_loaded": self.policy.loaded},
        )

    def act(self, obs: np.ndarray, new_episode: bool) -> np.ndarray | None:
        """The policy's deterministic action; before one arrives, a random one within
        ``exploration``, or None (no command: the arm holds)."""
        if self.policy.value is None:
            width = self.params[PolicyControllerConfig].exploration
            return self.rng.uniform(-width, width, self.arm.n) if width > 0 else None
        return self.policy.value.act(obs)


def main(args: list[str] | None = None) -> None:
    spin(PolicyControllerNode, args)


if __name__ == "__main__":
    main()
