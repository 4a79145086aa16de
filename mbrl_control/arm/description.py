"""The arm as its URDF describes it: joints, limits, efforts, velocities.

Read with the standard library's XML parser so that nodes and the safety layer can use
the limits without MuJoCo. The MuJoCo model is built from the same file
(:mod:`mbrl_control.arm.model`).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MOVABLE = ("revolute", "prismatic", "continuous")


@dataclass(frozen=True)
class JointSpec:
    """One URDF joint. Limits in rad (revolute) or m (prismatic); effort in N·m or N;
    velocity in rad/s or m/s. ``xyz``/``rpy`` place the child frame in the parent's (m,
    rad, fixed-axis roll-pitch-yaw); ``axis`` is the unit axis of motion in the child frame."""

    name: str
    type: str
    parent: str
    child: str
    lower: float
    upper: float
    effort: float
    velocity: float
    mimic: str | None = None
    xyz: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rpy: tuple[float, float, float] = (0.0, 0.0, 0.0)
    axis: tuple[float, float, float] = (1.0, 0.0, 0.0)


@dataclass(frozen=True)
class ArmDescription:
    """What the control stack needs from a URDF.

    ``arm_joints`` are the actuated revolute joints in chain order (the action and
    command order); ``gripper_joints`` the actuated prismatic ones; mimic joints
    (a parallel gripper's second finger) are neither.
    """

    name: str
    path: Path
    joints: tuple[JointSpec, ...]

    @property
    def arm_joints(self) -> tuple[JointSpec, ...]:
        return tuple(j for j in self.joints if j.type in ("revolute", "continuous") and j.mimic is None)

    @property
    def gripper_joints(self) -> tuple[JointSpec, ...]:
        return tuple(j for j in self.joints if j.type == "prismatic" and j.mimic is None)

    @property
    def arm_joint_names(self) -> tuple[str, ...]:
        return tuple(j.name for j in self.arm_joints)

    @property
    def lower(self) -> np.ndarray:
        """Arm joint lower limits, shape [n_arm]."""
        return np.array([j.lower for j in self.arm_joints])

    @property
    def upper(self) -> np.ndarray:
        """Arm joint upper limits, shape [n_arm]."""
        return np.array([j.upper for j in self.arm_joints])

    @property
    def velocity(self) -> np.ndarray:
        """Arm joint velocity limits, shape [n_arm]."""
        return np.array([j.velocity for j in self.arm_joints])

    def chain(self, tip_link: str) -> tuple[JointSpec, ...]:
        """The joints from the root link to ``tip_link``, root first.

        Raises:
            KeyError: no joint leads to ``tip_link`` and it is not the root.
        """
        by_child = {j.child: j for j in self.joints}
        parents = {j.parent for j in self.joints}
        if tip_link not in by_child and tip_link not in parents:
            raise KeyError(f"{self.path}: no link named {tip_link!r}")
        chain, link = [], tip_link
        while link in by_child:
            chain.append(by_child[link])
            link = by_child[link].parent
        return tuple(reversed(chain))

    def joint(self, name: str) -> JointSpec:
        for j in self.joints:
            if j.name == name:
                return j
        raise KeyError(f"{self.path}: no joint named {name!r}")


def _float(element: ET.Element, attr: str, where: str) -> float:
    raw = element.get(attr)
    if raw is None:
        raise ValueError(f"{where}: <{element.tag}> lacks the '{attr}' attribute")
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{where}: <{element.tag} {attr}={raw!r}> is not a number") from None


def _triple(element: ET.Element | None, attr: str, default: tuple[float, float, float], where: str) -> tuple[float, float, float]:
    if element is None or element.get(attr) is None:
        return default
    raw = element.get(attr, "")
    try:
        values = tuple(float(v) for v in raw.split())
    except ValueError:
        values = ()
    if len(values) != 3 or not all(np.isfinite(values)):
        raise ValueError(f"{where}: <{element.tag} {attr}={raw!r}> is not three numbers")
    return values  # type: ignore[return-value]


def load_description(path: str | Path) -> ArmDescription:
    """Parse a URDF file.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the XML is malformed, or a movable joint lacks limits, naming the
            file and the joint.
    """
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise ValueError(f"{path}: not a valid URDF (XML error: {err})") from None
    if root.tag != "robot":
        raise ValueError(f"{path}: not a URDF (root element is <{root.tag}>, expected <robot>)")
    links = {link.get("name") for link in root.findall("link")}
    joints = []
    for element in root.findall("joint"):
        name, kind = element.get("name", "?"), element.get("type", "?")
        where = f"{path}: joint {name!r}"
        parent = element.find("parent").get("link")  # type: ignore[union-attr]
        child = element.find("child").get("link")  # type: ignore[union-attr]
        for link in (parent, child):
            if link not in links:
                raise ValueError(f"{where} refers to an unknown link {link!r}")
        lower = upper = effort = velocity = float("nan")
        if kind in MOVABLE:
            limit = element.find("limit")
            if limit is None:
                raise ValueError(f"{where} is {kind} but has no <limit>")
            effort, velocity = _float(limit, "effort", where), _float(limit, "velocity", where)
            if kind == "continuous":
                lower, upper = -np.inf, np.inf
            else:
                lower, upper = _float(limit, "lower", where), _float(limit, "upper", where)
                if not lower < upper:
                    raise ValueError(f"{where}: lower limit {lower} is not below upper limit {upper}")
        mimic = element.find("mimic")
        origin = element.find("origin")
        axis = np.array(_triple(element.find("axis"), "xyz", (1.0, 0.0, 0.0), where))
        if kind in MOVABLE:
            if not np.linalg.norm(axis) > 0:
                raise ValueError(f"{where}: <axis xyz> is the zero vector")
            axis /= np.linalg.norm(axis)
        joints.append(
            JointSpec(
                name=name,
                type=kind,
                parent=parent,
                child=child,
                lower=lower,
                upper=upper,
                effort=effort,
                velocity=velocity,
                mimic=mimic.get("joint") if mimic is not None else None,
                xyz=_triple(origin, "xyz", (0.0, 0.0, 0.0), where),
                rpy=_triple(origin, "rpy", (0.0, 0.0, 0.0), where),
                axis=tuple(float(v) for v in axis),  # type: ignore[arg-type]
            )
        )
    return ArmDescription(name=root.get("name", path.stem), path=path, joints=tuple(joints))
