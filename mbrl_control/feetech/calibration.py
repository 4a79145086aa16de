"""Servo calibration: which servo drives which joint, where its range is, which way it turns.

The file is LeRobot's, so an arm calibrated with LeRobot needs nothing more
(``~/.cache/huggingface/lerobot/calibration/robots/so101_follower/<id>.json``), as JSON
or YAML: per joint, ``id`` (bus address), ``drive_mode`` (1: turns the other way),
``homing_offset`` (ticks; the servo reports ``actual − homing_offset``), ``range_min`` and
``range_max`` (ticks, after the offset).

A joint's angle is zero at the middle of its range, as the SO-101 URDF has it:

    q = s · (p − (range_min + range_max) / 2) · 2π / resolution,   s = −1 if drive_mode else 1

with ``p = present + h_servo − homing_offset`` the position in the calibration's frame
(``h_servo``: the offset the servo itself holds, read at start, so a file need not have been
written into the servo's EEPROM).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np


class CalibrationError(ValueError):
    """A calibration file that cannot be used, naming the file and the joint."""


@dataclass(frozen=True)
class JointCalibration:
    """One servo's calibration (LeRobot's ``MotorCalibration`` fields)."""

    id: int
    drive_mode: int
    homing_offset: int
    range_min: int
    range_max: int

    @property
    def middle(self) -> float:
        return (self.range_min + self.range_max) / 2


@dataclass(frozen=True)
class Calibration:
    """Every servo's calibration, by joint name, in the file's order."""

    joints: dict[str, JointCalibration]
    resolution: int = 4096  # encoder ticks per turn (STS3215)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.joints)

    @property
    def ids(self) -> tuple[int, ...]:
        return tuple(j.id for j in self.joints.values())

    def _arrays(self, names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        joints = [self.joints[n] for n in names]
        sign = np.array([-1.0 if j.drive_mode else 1.0 for j in joints])
        return (sign, np.array([j.middle for j in joints]), np.array([j.range_min for j in joints], dtype=float),
                np.array([j.range_max for j in joints], dtype=float))

    def to_radians(self, ticks: np.ndarray, names: tuple[str, ...] | None = None) -> np.ndarray:
        """Joint angles [n] (rad) from positions [n] in the calibration's frame (ticks)."""
        sign, middle, _, _ = self._arrays(names or self.names)
        return sign * (np.asarray(ticks, dtype=float) - middle) * (2 * math.pi / self.resolution)

    def to_ticks_unclamped(self, radians: np.ndarray, names: tuple[str, ...] | None = None) -> np.ndarray:
        """Positions [n] (float ticks, the calibration's frame) of joint angles [n] (rad)."""
        sign, middle, _, _ = self._arrays(names or self.names)
        return middle + sign * np.asarray(radians, dtype=float) * (self.resolution / (2 * math.pi))

    def to_ticks(self, radians: np.ndarray, names: tuple[str, ...] | None = None) -> np.ndarray:
        """Positions [n] (int ticks, the calibration's frame) for joint angles [n] (rad),
        clamped to each servo's calibrated range."""
        _, _, low, high = self._arrays(names or self.names)
        return np.clip(np.rint(self.to_ticks_unclamped(radians, names)), low, high).astype(int)

    def range_radians(self, names: tuple[str, ...] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The calibrated range as joint angles: (lower [n], upper [n]) rad."""
        sign, middle, low, high = self._arrays(names or self.names)
        ends = np.stack([self.to_radians(low, names), self.to_radians(high, names)])
        return ends.min(0), ends.max(0)

    def save(self, path: str | Path) -> Path:
        """Write as JSON (LeRobot's layout) or, for a .yaml/.yml path, YAML."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {name: asdict(joint) for name, joint in self.joints.items()}
        if path.suffix in (".yaml", ".yml"):
            import yaml

            path.write_text(yaml.safe_dump(data, sort_keys=False))
        else:
            path.write_text(json.dumps(data, indent=4) + "\n")
        return path


FIELDS = ("id", "drive_mode", "homing_offset", "range_min", "range_max")


def load_calibration(path: str | Path, resolution: int = 4096) -> Calibration:
    """Read a calibration file (LeRobot's JSON, or the same as YAML).

    Raises:
        CalibrationError: unreadable, a field missing or not an integer, an empty or
            inverted range, a repeated servo id — naming the file and the joint.
    """
    path = Path(path)
    try:
        text = path.read_text()
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as err:  # noqa: BLE001 — OSError, JSON's and YAML's parse errors
        raise CalibrationError(f"{path}: cannot read the calibration ({type(err).__name__}: {err})") from None
    if not isinstance(data, dict) or not data:
        raise CalibrationError(f"{path}: expected a mapping of joint names to {', '.join(FIELDS)}")
    joints, seen = {}, {}
    for name, entry in data.items():
        where = f"{path}: joint {name!r}"
        if not isinstance(entry, dict):
            raise CalibrationError(f"{where}: expected a mapping with {', '.join(FIELDS)}")
        missing = [f for f in FIELDS if f not in entry]
        if missing:
            raise CalibrationError(f"{where}: missing {', '.join(missing)}")
        values = {}
        for field in FIELDS:
            value = entry[field]
            if isinstance(value, bool) or not isinstance(value, int):
                raise CalibrationError(f"{where}: {field} = {value!r} is not an integer")
            values[field] = value
        joint = JointCalibration(**values)
        if not 0 <= joint.id <= 252:
            raise CalibrationError(f"{where}: id {joint.id} is not a servo address (0-252)")
        if joint.id in seen:
            raise CalibrationError(f"{where}: id {joint.id} is also joint {seen[joint.id]!r}'s")
        if not joint.range_min < joint.range_max:
            raise CalibrationError(f"{where}: range_min {joint.range_min} is not below range_max {joint.range_max}")
        if joint.drive_mode not in (0, 1):
            raise CalibrationError(f"{where}: drive_mode {joint.drive_mode} is neither 0 nor 1")
        seen[joint.id] = name
        joints[name] = joint
    return Calibration(joints, resolution)


def calibration_for(description, resolution: int = 4096) -> Calibration:
    """The calibration of an ideally assembled arm of ``description``: ids 1…n along the
    arm joints (then a revolute gripper's), no homing offset, each range centred on the
    middle tick (the joint's zero) and wide enough for the URDF's limits. For an emulated
    bus, or as a start to edit."""
    joints = [j for j in description.arm_joints + description.gripper_joints if j.type != "prismatic"]
    per_rad = resolution / (2 * math.pi)
    middle = resolution // 2
    half = {j.name: min(middle - 1, math.ceil(max(abs(j.lower), abs(j.upper)) * per_rad)) for j in joints}
    return Calibration({j.name: JointCalibration(i + 1, 0, 0, middle - half[j.name], middle + half[j.name]) for i, j in enumerate(joints)},
                       resolution)
