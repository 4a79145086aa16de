"""Actions ⇄ joint commands.

ArmReach's action ``a`` ∈ [-1, 1]^n is a change of the joint position targets, so the
command sent to the servos (a ros2_control position forward-command controller) is the
integral

    q*_t = clip(q*_{t-1} + Δ · clip(a_t, -1, 1), low, high)

with Δ = ``max_joint_step`` rad per control tick. The inverse, ``(q*_t - q*_{t-1}) / Δ``,
recovers the action from two consecutive commands, which is how a recorder that only sees
commands (a rosbag, a real arm's topic) rebuilds the dataset a model learns from.
"""

from __future__ import annotations

import numpy as np

ACTION_TOLERANCE = 1e-6  # commands are float64; their differences carry rounding


class JointTargets:
    """The command state ``q*`` [n] of an arm driven by ArmReach actions.

    Args:
        low, high: [n] command range (the URDF limits less a margin).
        max_joint_step: Δ, rad per tick for an action of ±1.
    """

    def __init__(self, low: np.ndarray, high: np.ndarray, max_joint_step: float) -> None:
        self.low, self.high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
        if self.low.shape != self.high.shape or self.low.ndim != 1 or np.any(self.low >= self.high):
            raise ValueError(f"joint command range must be [n] arrays with low < high, got {self.low} and {self.high}")
        if not max_joint_step > 0:
            raise ValueError(f"max_joint_step = {max_joint_step}: must be > 0")
        self.max_joint_step = float(max_joint_step)
        self.command = np.clip(np.zeros_like(self.low), self.low, self.high)

    def reset(self, joint_positions: np.ndarray) -> np.ndarray:
        """Start from the measured ``joint_positions`` [n] (a new episode); returns ``q*``."""
        self.command = np.clip(np.asarray(joint_positions, dtype=np.float64), self.low, self.high)
        return self.command.copy()

    def step(self, action: np.ndarray) -> np.ndarray:
        """Integrate ``action`` [n] (clipped to [-1, 1]); returns the new command ``q*`` [n]."""
        delta = self.max_joint_step * np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        self.command = np.clip(self.command + delta, self.low, self.high)
        return self.command.copy()

    def action_between(self, previous: np.ndarray, command: np.ndarray) -> np.ndarray | None:
        """The action [n] that takes command ``previous`` to ``command``, or None when no
        action in [-1, 1] does (a jump: a reset, another commander, a skipped tick)."""
        action = (np.asarray(command, dtype=np.float64) - previous) / self.max_joint_step
        if np.any(np.abs(action) > 1.0 + ACTION_TOLERANCE):
            return None
        return np.clip(action, -1.0, 1.0)
