"""``policy_controller``: a trained policy at control rate, the cheap runtime for a
low-cost arm's computer (microseconds per action where MPC takes tens of milliseconds).

Policies come from ``policy_path`` (``mbrl-control policy`` writes ``policy.pt``) or from
``mbrl/policy`` (a trainer's latched checkpoint bytes) and are swapped in between ticks;
one that fails to load or was trained for another arm is refused and the last good policy
stays. Before any policy arrives the arm is not commanded (it holds its position).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch
from rclpy.node import Node
from std_msgs.msg import UInt8MultiArray

from mbrl_control.checkpoint import CheckpointError
from mbrl_control.config import Config, param
from mbrl_control.nodes.common import LATCHED, POLICY_TOPIC, bind_arm, spin
from mbrl_control.nodes.control_loop import ControlLoop
from mbrl_control.nodes.params import ParameterBinding
from mbrl_control.policies.networks import GaussianPolicy
from mbrl_control.policies.train import load_policy


@dataclass(frozen=True)
class PolicyControllerConfig(Config):
    """Settings of the policy controller."""

    control_rate: float = param(20.0, "Commands per second (the servo bus rate).", low=0.5, high=1000.0)
    policy_path: str = param("", "Policy checkpoint to run from the start (mbrl-control policy); empty: wait for mbrl/policy.", read_only=True)
    stats_every: int = param(20, "Ticks between control-loop statistics on /diagnostics.", low=1, high=100_000)


class PolicyControllerNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("policy_controller", **kwargs)
        self.arm_params, self.arm = bind_arm(self)
        self.params = ParameterBinding(self, PolicyControllerConfig())
        torch.set_num_threads(1)
        self.loop = ControlLoop(self, self.arm)
        self.policy: GaussianPolicy | None = None
        self.policies_loaded = 0
        path = self.params[PolicyControllerConfig].policy_path
        if path and not self.set_policy(path, path):
            raise CheckpointError(f"policy_path = {path!r}: could not be loaded (see the error above)")
        self.create_subscription(UInt8MultiArray, POLICY_TOPIC, self.on_policy, LATCHED)
        self.timer, self._rate = None, 0.0
        self._arm_timer()

    def _arm_timer(self) -> None:
        rate = self.params[PolicyControllerConfig].control_rate
        if rate != self._rate:
            if self.timer is not None:
                self.destroy_timer(self.timer)
            self.timer, self._rate = self.create_timer(1.0 / rate, self.tick), rate

    def on_policy(self, msg: UInt8MultiArray) -> None:
        self.set_policy(bytes(msg.data), f"{POLICY_TOPIC} message")

    def set_policy(self, source: str | bytes, name: str) -> bool:
        """Load a policy; keep the last good one when this one fails."""
        try:
            policy = load_policy(source, self.arm.obs_dim, self.arm.n)
        except CheckpointError as err:
            self.get_logger().error(f"policy from {name} refused, keeping the last good policy: {err}")
            return False
        self.policy = policy
        self.policies_loaded += 1
        self.get_logger().info(f"running the policy from {name}")
        return True

    def tick(self) -> None:
        started = time.monotonic()
        self._arm_timer()
        obs, _ = self.loop.observation()
        if obs is None or self.policy is None:
            return
        with torch.no_grad():
            action = self.policy.act(obs)
        self.loop.send(action, started, 1.0 / self._rate)
        self.loop.report(self.params[PolicyControllerConfig].stats_every, {"mode": "policy", "policies_loaded": self.policies_loaded})


def main(args: list[str] | None = None) -> None:
    spin(PolicyControllerNode, args)


if __name__ == "__main__":
    main()
