"""Transitions from streams of joint states, commands and targets (a running arm or a bag).

A planner reads the newest joint state, sends command ``q*_k`` and the arm moves; the
next command ``q*_{k+1}`` goes out with the state the arm reached. So each command closes
a transition::

    (obs_k, a_k, obs_{k+1}),   a_k = (q*_k - q*_{k-1}) / Δ     (mbrl_control.arm.commands)

with ``obs`` built as ArmReach builds it (:func:`mbrl_control.arm.reach.observe`) from the
newest joint state at that command, mapped by joint name. Commands are the clock: joint
states may arrive at any rate, and the control rate is the rate the commander runs at.

An episode is the time between target changes (a real arm's episode), so a new target
closes the pending transition with the newest state and starts a new episode. Its first
command's action is taken from the measured joints (a planner restarts its command state
there, as ArmReach's reset does), and only once a joint state has come after the new
target: a command sent before it was planned from the old episode's state (for a
simulator that resets the arm with the target, from before the reset; the simulator drops
it too). A command no action in [-1, 1] explains (a jump) starts the chain afresh; a
command before any joint state or target is skipped. ``skipped`` counts these, by reason.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from mbrl_control.arm.commands import JointTargets
from mbrl_control.arm.kinematics import ForwardKinematics
from mbrl_control.arm.reach import observe
from mbrl_control.data.transitions import TransitionDataset


@dataclass
class _Pending:
    obs: np.ndarray
    command: np.ndarray
    action: np.ndarray | None  # None until the command's action is known
    time: float


class TransitionRecorder:
    """Builds a :class:`TransitionDataset` from ``state``, ``command`` and ``target`` calls
    made in time order.

    Args:
        kinematics: the arm's forward kinematics (for the observation's end effector).
        targets: the command range and Δ that define actions.
        dataset: transitions recorded before (a restart appends to them, episode ids
            continuing); a new dataset when None.

    Attributes:
        dataset: every transition so far.
        episode: id of the current episode (-1 before the first target).
        skipped: Counter of commands that closed no transition, by reason.
    """

    def __init__(self, kinematics: ForwardKinematics, targets: JointTargets, dataset: TransitionDataset | None = None) -> None:
        self.kinematics, self.targets = kinematics, targets
        n = len(targets.low)
        self.dataset = dataset if dataset is not None else TransitionDataset(2 * n + 6, n)
        self.episode = int(self.dataset.episode.max()) if len(self.dataset) else -1
        self.skipped: Counter[str] = Counter()
        self._q: np.ndarray | None = None
        self._qd: np.ndarray | None = None
        self._target: np.ndarray | None = None
        self._pending: _Pending | None = None
        self._episode_start = False
        self._awaiting_state = False  # a new target came and no joint state since

    def state(self, q: np.ndarray, qd: np.ndarray) -> None:
        """The newest measured joint positions and velocities [n], in command order."""
        self._q, self._qd = np.asarray(q, dtype=np.float64), np.asarray(qd, dtype=np.float64)
        self._awaiting_state = False

    def target(self, target: np.ndarray, time: float) -> bool:
        """The task's target [3]; returns True when it starts a new episode."""
        target = np.asarray(target, dtype=np.float64)
        if self._target is not None and np.array_equal(target, self._target):
            return False
        self._close(time)  # the last command's successor keeps its action: the arm moves on
        self._target = target
        self._pending = None  # the new episode's first action starts from the measured joints
        self._episode_start = self._awaiting_state = True
        self.episode += 1
        return True

    def command(self, command: np.ndarray, time: float) -> None:
        """A command [n] sent to the arm at ``time`` (s)."""
        command = np.asarray(command, dtype=np.float64)
        if self._q is None or self._target is None:
            self.skipped["before the first joint state and target"] += 1
            return
        if self._awaiting_state:
            self.skipped["after a new target, before its first joint state"] += 1
            return
        self._close(time)
        previous = self._pending
        action = None if previous is None else self.targets.action_between(previous.command, command)
        if action is None and self._episode_start:
            action = self.targets.action_between(self._q, command)
        if action is None and previous is not None:
            self.skipped["a jump no action in [-1, 1] explains"] += 1
        self._episode_start = False
        self._pending = _Pending(self._observe(), command, action, time)

    def _observe(self) -> np.ndarray:
        return observe(self.kinematics, self._q, self._qd, self._target)

    def _close(self, time: float) -> None:
        """Record the pending transition, which the newest state completes."""
        pending = self._pending
        if pending is None or pending.action is None or self._q is None:
            return
        self.dataset.append(pending.obs, pending.action, self._observe(), self.episode, pending.time)
        pending.action = None  # recorded once
