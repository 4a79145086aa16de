"""The arm as its URDF describes it: joints, limits, efforts, velocities, meshes.

Read with the standard library's XML parser so that nodes and the safety layer can use
the limits without MuJoCo. The MuJoCo model is built from the same file
(:mod:`mbrl_control.arm.model`).

Which joints are the arm's follows from the end effector: the arm joints are the movable
joints on the chain from the root link to ``ee_link`` (or those of them a ``joints`` list
names: the others are held at zero); every other movable joint hangs off that chain (a
gripper: one revolute jaw, or a prismatic pair), and a ``<mimic>`` joint follows its
leader. So a maker's URDF works as its CAD exporter wrote it, whatever the gripper.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MOVABLE = ("revolute", "prismatic", "continuous")
ROTARY = ("revolute", "continuous")


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
    mimic_multiplier: float = 1.0
    mimic_offset: float = 0.0
    xyz: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rpy: tuple[float, float, float] = (0.0, 0.0, 0.0)
    axis: tuple[float, float, float] = (1.0, 0.0, 0.0)


@dataclass(frozen=True)
class ArmDescription:
    """What the control stack needs from a URDF, for the end effector ``ee_link``.

    ``arm_joints`` are the movable joints on the chain from the root to ``ee_link``, in
    chain order (the action order), or those of them ``selected`` names; ``held_joints``
    the chain's others, held at :meth:`hold_position`; ``gripper_joints`` the movable joints
    off the chain that no ``<mimic>`` drives (a jaw, fingers); ``mimic_joints`` follow a
    leader.
    ``meshes`` lists each mesh a ``<visual>`` or ``<collision>`` names, as ``(link,
    filename)`` in the URDF's own spelling.
    """

    name: str
    path: Path
    joints: tuple[JointSpec, ...]
    ee_link: str = "tcp"
    meshes: tuple[tuple[str, str], ...] = ()
    selected: tuple[str, ...] = ()

    @property
    def arm_joints(self) -> tuple[JointSpec, ...]:
        return tuple(j for j in self.chain(self.ee_link) if j.type in ROTARY and (not self.selected or j.name in self.selected))

    @property
    def held_joints(self) -> tuple[JointSpec, ...]:
        return tuple(j for j in self.chain(self.ee_link) if j.type in ROTARY and self.selected and j.name not in self.selected)

    @property
    def gripper_joints(self) -> tuple[JointSpec, ...]:
        chain = {j.name for j in self.chain(self.ee_link)}
        return tuple(j for j in self.joints if j.type in MOVABLE and j.mimic is None and j.name not in chain)

    @staticmethod
    def hold_position(joint: JointSpec) -> float:
        """Where a held joint stays: zero, or the end of its range nearest to it."""
        return float(np.clip(0.0, joint.lower, joint.upper))

    @property
    def mimic_joints(self) -> tuple[JointSpec, ...]:
        return tuple(j for j in self.joints if j.type in MOVABLE and j.mimic is not None)

    @property
    def leaf_links(self) -> tuple[str, ...]:
        """Links no joint leaves from: where an end effector usually is."""
        parents = {j.parent for j in self.joints}
        return tuple(j.child for j in self.joints if j.child not in parents)

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


def load_description(path: str | Path, ee_link: str = "tcp", selected_joints: tuple[str, ...] | list[str] = ()) -> ArmDescription:
    """Parse a URDF file, its arm being the chain from the root to ``ee_link``
    (``selected_joints``, when given: the chain's joints to command; the rest are held).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the XML is malformed, a movable joint lacks limits, there is no link
            ``ee_link`` (the message lists the leaf links), a joint on its chain is one
            the arm cannot command (a mimic joint), or ``selected_joints`` names a joint twice or one
            off the chain, naming the file and the joint.
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
        if mimic is not None and mimic.get("joint") is None:
            raise ValueError(f"{where}: <mimic> lacks the 'joint' attribute")
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
                mimic_multiplier=_float(mimic, "multiplier", where) if mimic is not None and mimic.get("multiplier") else 1.0,
                mimic_offset=_float(mimic, "offset", where) if mimic is not None and mimic.get("offset") else 0.0,
                xyz=_triple(origin, "xyz", (0.0, 0.0, 0.0), where),
                rpy=_triple(origin, "rpy", (0.0, 0.0, 0.0), where),
                axis=tuple(float(v) for v in axis),  # type: ignore[arg-type]
            )
        )
    names = {j.name for j in joints}
    for joint in joints:
        if joint.mimic is not None and joint.mimic not in names:
            raise ValueError(f"{path}: joint {joint.name!r} mimics an unknown joint {joint.mimic!r}")
    meshes = tuple(
        (link.get("name", "?"), mesh.get("filename", ""))
        for link in root.findall("link") for mesh in link.findall("./*/geometry/mesh")
    )
    selected = tuple(selected_joints)
    description = ArmDescription(name=root.get("name", path.stem), path=path, joints=tuple(joints), ee_link=ee_link,
                                 meshes=meshes, selected=selected)
    if ee_link not in links:
        raise ValueError(
            f"{path}: no link named {ee_link!r} for the end effector (ee_link); the links at the "
            f"ends of its chains are {', '.join(description.leaf_links) or 'none'}"
        )
    for joint in description.chain(ee_link):
        if joint.type in MOVABLE and joint.mimic is not None:
            raise ValueError(f"{path}: joint {joint.name!r} on the chain to {ee_link!r} mimics {joint.mimic!r}; an arm joint must be commanded on its own")
        if joint.type == "prismatic":
            raise ValueError(f"{path}: joint {joint.name!r} on the chain to {ee_link!r} is prismatic; the arm's joints must be revolute (is ee_link on a finger?)")
    chain = [j.name for j in description.chain(ee_link) if j.type in ROTARY]
    if len(set(selected)) != len(selected):
        raise ValueError(f"{path}: joints = {list(selected)} names a joint twice")
    off = [name for name in selected if name not in chain]
    if off:
        raise ValueError(f"{path}: joints {off} are not on the chain from the root to {ee_link!r} ({', '.join(chain)}): "
                         "an arm joint must move the end effector")
    return description
