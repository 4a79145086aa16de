"""Servo profiles: the torque and speed an arm's joints have, from the servo's datasheet.

CAD exporters write placeholder limits (``effort="10" velocity="10"`` on every joint), and
a URDF that says 10 N·m would simulate an arm five times stronger than its bus servos. The
simulator takes each revolute joint's effort (stall torque, N·m) and velocity (no-load
speed, rad/s) from the profile named by ``SimConfig.servo``; the profile ``urdf`` keeps
the URDF's own figures. Prismatic joints (a linear gripper) keep the URDF's.

A new servo is one instance: ``ServoProfile("xl330", stall_torque=..., ...)`` registers it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mbrl_control.arm.description import JointSpec

KG_CM = 0.0980665  # N·m per kg·cm, the unit of hobby-servo datasheets


@dataclass(frozen=True)
class ServoProfile:
    """One servo model's datasheet figures.

    Attributes:
        name: how ``SimConfig.servo`` names it.
        stall_torque: N·m at the rated voltage.
        no_load_speed: rad/s at the rated voltage.
        resolution: encoder counts per turn.
        source: where the figures come from.
    """

    name: str
    stall_torque: float
    no_load_speed: float
    resolution: int
    source: str

    registry: ClassVar[dict[str, "ServoProfile"]] = {}

    def __post_init__(self) -> None:
        ServoProfile.registry[self.name] = self

    def limits(self, joint: JointSpec) -> tuple[float, float]:
        """(effort, velocity) of ``joint`` driven by this servo: the datasheet's for a
        revolute joint, the URDF's for a prismatic one."""
        if joint.type == "prismatic":
            return joint.effort, joint.velocity
        return self.stall_torque, self.no_load_speed


@dataclass(frozen=True)
class URDFLimits(ServoProfile):
    """The URDF's own ``<limit effort velocity>`` on every joint."""

    def limits(self, joint: JointSpec) -> tuple[float, float]:
        return joint.effort, joint.velocity


# Feetech STS3215, 12 V (C018/C046; the SO-101 follower arm): 30 kg·cm, 0.222 s per 60°.
ServoProfile("sts3215", 30 * KG_CM, (3.141592653589793 / 3) / 0.222, 4096, "Feetech STS3215 12 V datasheet: 30 kg·cm, 0.222 s/60°")
# Feetech STS3215, 7.4 V (C001; the SO-100 and the leader arms): 19.5 kg·cm, 0.192 s per 60°.
ServoProfile("sts3215_7v4", 19.5 * KG_CM, (3.141592653589793 / 3) / 0.192, 4096, "Feetech STS3215 7.4 V datasheet: 19.5 kg·cm, 0.192 s/60°")
URDFLimits("urdf", float("nan"), float("nan"), 0, "the URDF's <limit effort velocity>")

SERVOS = ServoProfile.registry


def servo_profile(name: str) -> ServoProfile:
    """The registered profile ``name``.

    Raises:
        KeyError: no such profile, naming the ones there are.
    """
    try:
        return SERVOS[name]
    except KeyError:
        raise KeyError(f"servo = {name!r}: not a known servo profile; known: {', '.join(sorted(SERVOS))}") from None
