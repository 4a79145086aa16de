"""The last word before a command reaches the arm.

A low-cost arm has no safety controller of its own, so every command a planner or a
policy proposes passes through :class:`SafetyLayer`, which sends

    q*_t = clip(q̂_t, q_ref - s_t, q_ref + s_t)  then  clip(·, low, high),
    s_t = min(max_step, max_velocity · (t - t_prev))

for a proposal ``q̂_t`` [n] (chain order): within the URDF limits less their margin, and
at most ``s_t`` from the reference ``q_ref`` — the previous command, or the measured
joints when no command went out in the last ``state_timeout`` (someone else may have
moved the arm since) or an episode starts (:meth:`SafetyLayer.restart`). The result is always finite and within the limits. Instead of a
proposal it sends a *hold* — the measured position at the moment the hold began, clipped
into the limits — when

* the e-stop is latched (:meth:`SafetyLayer.estop`; only :meth:`SafetyLayer.reset`
  clears it),
* the newest joint state is older than ``state_timeout`` (the watchdog; it clears when
  a state arrives), or
* the proposal is not ``n`` finite numbers.

Every intervention is counted by reason in :attr:`SafetyLayer.interventions`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from mbrl_control.config import Config, param

CLAMPED_LIMIT = "clamped to joint limits"
CLAMPED_STEP = "clamped to the largest step"
REFUSED = "proposal not finite or wrongly sized, held"
FAILED = "controller failed, held"
HELD_STALE = "no fresh joint state, held"
STOPPED = "e-stop latched, held"


@dataclass(frozen=True)
class SafetyConfig(Config):
    """Limits of the safety layer; read-only while a node runs, so no parameter change can
    widen them (the joint range itself comes from the URDF and ``limit_margin``)."""

    max_step: float = param(0.15, "Largest change of a joint command in one control tick (rad).",
                            low=0.0, low_exclusive=True, high=1.0, read_only=True)
    max_velocity: float = param(3.0, "Largest commanded joint speed (rad/s): a command moves at most max_velocity × the time since the previous one.",
                                low=0.0, low_exclusive=True, high=50.0, read_only=True)
    state_timeout: float = param(0.25, "Seconds without a fresh joint state after which the arm holds its last measured position.",
                                 low=0.0, low_exclusive=True, high=10.0, read_only=True)


class SafetyLayer:
    """Filters proposed joint commands (chain order) into safe ones. Times are seconds on
    one clock (the node's: simulated time under ``use_sim_time``).

    Args:
        low, high: [n] the joint range commands must stay in.

    Attributes:
        stop_reason: why the e-stop is latched; None while it is not.
        holding: why the arm is held now (e-stop, watchdog, refused proposal); None while not.
        interventions: Counter of interventions by reason (the module's constants).
    """

    def __init__(self, low: np.ndarray, high: np.ndarray, config: SafetyConfig = SafetyConfig()) -> None:
        self.low, self.high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
        if self.low.shape != self.high.shape or self.low.ndim != 1 or not np.all(self.low < self.high):
            raise ValueError(f"joint range must be [n] arrays with low < high, got {self.low} and {self.high}")
        self.config = config
        self.stop_reason: str | None = None
        self.holding: str | None = None
        self.interventions: Counter[str] = Counter()
        self._measured: np.ndarray | None = None
        self._measured_at = -np.inf
        self._hold: np.ndarray | None = None
        self._command: np.ndarray | None = None
        self._command_at = -np.inf

    @property
    def n(self) -> int:
        return len(self.low)

    def measured(self, q: np.ndarray, time: float) -> None:
        """A fresh joint state: positions ``q`` [n] (finite, chain order) measured at ``time``."""
        q = np.asarray(q, dtype=np.float64)
        if q.shape != (self.n,) or not np.all(np.isfinite(q)):
            raise ValueError(f"measured joint positions must be {self.n} finite values, got {q.tolist()}")
        self._measured, self._measured_at = q, time

    def restart(self) -> None:
        """A new episode: the next command steps from the measured joints, not from the
        last command (a simulator may have reset the arm)."""
        self._command, self._command_at = None, -np.inf

    def estop(self, reason: str) -> None:
        """Latch the stop: from now on only holds go out, until :meth:`reset`."""
        if self.stop_reason is None:
            self.stop_reason = reason
            self._hold = None
            self._hold_position()  # where the arm is now, not where it drifts to

    def reset(self) -> str | None:
        """Clear a latched e-stop; returns the reason it had (None: it was not latched)."""
        reason, self.stop_reason = self.stop_reason, None
        return reason

    def state_age(self, time: float) -> float:
        """Seconds since the newest joint state (inf before the first)."""
        return time - self._measured_at

    def must_hold(self, time: float) -> str | None:
        """Why nothing but a hold may go out at ``time`` (the caller need not plan), or None."""
        if self.stop_reason is not None:
            return STOPPED
        if self.state_age(time) > self.config.state_timeout:
            return HELD_STALE
        return None

    def command(self, proposal: np.ndarray | None, time: float) -> np.ndarray | None:
        """The command [n] to send at ``time`` for ``proposal`` [n] (None: the controller
        proposes nothing, and nothing is sent unless the arm must be held). None also
        before the first joint state, when there is no position to hold."""
        reason = self.must_hold(time)
        if reason is None and proposal is not None:
            proposal = np.asarray(proposal, dtype=np.float64)
            if proposal.shape != (self.n,) or not np.all(np.isfinite(proposal)):
                reason = REFUSED
        if reason is not None:
            return self.hold(reason, time)
        self.holding, self._hold = None, None
        if proposal is None:
            return None
        return self._send(self._clamp(proposal, time), time)

    def _clamp(self, proposal: np.ndarray, time: float) -> np.ndarray:
        fresh = time - self._command_at <= self.config.state_timeout
        reference = self._command if fresh and self._command is not None else self._measured
        command = proposal
        if reference is not None:
            step = min(self.config.max_step, self.config.max_velocity * max(time - self._command_at, 0.0))
            command = np.clip(command, reference - step, reference + step)
            if not np.array_equal(command, proposal):
                self.interventions[CLAMPED_STEP] += 1
        limited = np.clip(command, self.low, self.high)
        if not np.array_equal(limited, command):
            self.interventions[CLAMPED_LIMIT] += 1
        return limited

    def hold(self, reason: str, time: float) -> np.ndarray | None:
        """The hold command [n] for ``reason`` (one of the module's constants): the
        measured position when the hold began, within the limits; None before any state."""
        if self._hold_position() is None:
            return None
        self.holding = reason
        self.interventions[reason] += 1
        return self._send(self._hold, time)

    def _hold_position(self) -> np.ndarray | None:
        """The position a hold keeps, fixed when the hold begins."""
        if self._hold is None:
            source = self._measured if self._measured is not None else self._command
            if source is not None:
                self._hold = np.clip(source, self.low, self.high)
        return self._hold

    def _send(self, command: np.ndarray, time: float) -> np.ndarray:
        self._command, self._command_at = command.copy(), time
        return command.copy()
