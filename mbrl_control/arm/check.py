"""What the stack will make of a URDF: ``mbrl-control check-urdf FILE --ee-link LINK``.

The first thing to run on a maker's URDF: the arm joints it found (the chain from the root
to the end effector, in command order) with the limits and the servo figures the simulator
will use, the gripper, the tool centre point, the meshes, and warnings for what CAD
exporters get wrong (placeholder limits, a rest pose outside the range).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mbrl_control.arm.description import ArmDescription, load_description
from mbrl_control.arm.meshes import MeshError, resolve_mesh
from mbrl_control.arm.servos import servo_profile


@dataclass
class URDFCheck:
    """The report: ``lines`` to print, then ``warnings`` and ``errors`` (an error means the
    stack cannot use the file as configured)."""

    lines: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def text(self) -> str:
        out = list(self.lines)
        out += ["warnings:"] + [f"  - {w}" for w in self.warnings] if self.warnings else []
        out += ["errors:"] + [f"  - {e}" for e in self.errors] if self.errors else []
        out.append("OK: the simulator and the nodes can use this arm" if self.ok else "NOT USABLE as configured")
        return "\n".join(out)


def check_urdf(path: str | Path, ee_link: str, servo: str = "sts3215", gripper_opening: float = 0.01,
               joints: tuple[str, ...] = ()) -> URDFCheck:
    """Check the URDF at ``path`` for the end effector ``ee_link``, servo profile ``servo``
    and (when given) the arm ``joints`` to command."""
    from mbrl_control.arm.sim import SimConfig  # noqa: PLC0415 (MuJoCo only past the parse)

    report = URDFCheck()
    try:
        description = load_description(path, ee_link, joints)
        profile = servo_profile(servo)
    except (OSError, ValueError, KeyError) as err:
        report.errors.append(str(err).strip("'\""))
        return report
    _joints(description, profile, report)
    _meshes(description, report)
    if report.ok:
        try:
            config = SimConfig(urdf=str(path), ee_link=ee_link, servo=servo, gripper_opening=gripper_opening, joints=tuple(joints))
            _simulation(config, report)
        except Exception as err:  # noqa: BLE001 — whatever MuJoCo or the config refuse is the answer
            report.errors.append(f"the simulator refuses it: {type(err).__name__}: {err}")
    return report


def _joints(description: ArmDescription, profile, report: URDFCheck) -> None:
    chain = description.chain(description.ee_link)
    root = chain[0].parent if chain else description.ee_link
    report.lines.append(f"URDF        {description.path} (robot {description.name!r})")
    if chain and chain[-1].type == "fixed":
        report.lines.append(f"ee_link     {description.ee_link}: a frame on fixed joint {chain[-1].name!r} of {chain[-1].parent!r}")
    else:
        report.lines.append(f"ee_link     {description.ee_link}")
    report.lines.append(f"servo       {profile.name}: {profile.source}")
    report.lines.append(f"arm joints  the chain {root} → {description.ee_link}, in chain order:")
    report.lines.append(f"    {'joint':<16}{'type':<11}{'lower':>8}{'upper':>8}{'effort':>9}{'speed':>8}   URDF effort, velocity")
    for i, joint in enumerate(description.arm_joints):
        effort, speed = profile.limits(joint)
        report.lines.append(f"  {i} {joint.name:<16}{joint.type:<11}{joint.lower:>8.3f}{joint.upper:>8.3f}"
                            f"{effort:>7.2f}Nm{speed:>6.2f}/s   {joint.effort:g}, {joint.velocity:g}")
        if not np.all(np.isfinite([joint.lower, joint.upper])):
            report.errors.append(f"arm joint {joint.name!r} is {joint.type} without finite limits; commands need a range")
        elif not joint.lower <= 0.0 <= joint.upper:
            report.warnings.append(f"arm joint {joint.name!r}: 0 is outside [{joint.lower:g}, {joint.upper:g}]; "
                                   "episodes start from the nearest pose inside the range")
    for joint in description.held_joints:
        report.lines.append(f"held        {joint.name} ({joint.type}, on the chain, not in joints): at {description.hold_position(joint):g} rad")
    if not description.arm_joints:
        report.errors.append(f"no revolute joint between the root and {description.ee_link!r}: nothing to command")
    for joint in description.gripper_joints:
        unit = "m" if joint.type == "prismatic" else "rad"
        report.lines.append(f"gripper     {joint.name} ({joint.type}, [{joint.lower:g}, {joint.upper:g}] {unit}), held still")
    if not description.gripper_joints:
        report.lines.append("gripper     none")
    for joint in description.mimic_joints:
        report.lines.append(f"mimic       {joint.name} = {joint.mimic_multiplier:g}·{joint.mimic} + {joint.mimic_offset:g}")
    movable = [j for j in description.joints if j.type != "fixed"]
    figures = {(j.effort, j.velocity) for j in movable}
    if len(movable) > 1 and len(figures) == 1:
        effort, velocity = figures.pop()
        use = ("the simulator uses them as written (servo: urdf)" if profile.name == "urdf"
               else f"the simulator uses the {profile.name} profile instead (servo: urdf would use them)")
        report.warnings.append(f"every joint's <limit> says effort={effort:g} velocity={velocity:g}: placeholders, "
                               f"as CAD exporters write them; {use}")


def _meshes(description: ArmDescription, report: URDFCheck) -> None:
    if not description.meshes:
        report.lines.append("meshes      none (primitive geometry)")
        return
    found: set[Path] = set()
    for link, filename in description.meshes:
        try:
            found.add(resolve_mesh(filename, description.path))
        except MeshError as err:
            report.errors.append(f"link {link!r}: {err}")
    folders = sorted({str(p.parent) for p in found})
    report.lines.append(f"meshes      {len(description.meshes)} references to {len(found)} file(s), found in {', '.join(folders) or '-'}")


def _simulation(config, report: URDFCheck) -> None:
    from transforms3d.euler import mat2euler

    from mbrl_control.arm.env import ArmReach
    from mbrl_control.arm.model import EE_SITE

    env = ArmReach(sim=config)
    sim = env.sim
    model = sim.model
    rest = np.clip(np.zeros(sim.n_joints), sim.command_low, sim.command_high)
    _, touches = sim.forward_kinematics(rest)
    sim.reset(rest, sim.target)
    tcp = sim.ee_position
    rpy = mat2euler(sim.data.site_xmat[model.site(EE_SITE).id].reshape(3, 3), axes="sxyz")
    report.lines.append(f"TCP         at the rest pose: xyz [{', '.join(f'{v:.4f}' for v in tcp)}] m, "
                        f"rpy [{', '.join(f'{v:.3f}' for v in rpy)}] rad" + ("  (touching: table or itself)" if touches else ""))
    rng = np.random.default_rng(0)
    poses = rng.uniform(sim.command_low, sim.command_high, size=(300, sim.n_joints))
    reached = [sim.forward_kinematics(q) for q in poses]
    free = np.mean([not t for _, t in reached])
    reach = max(float(np.linalg.norm(p)) for p, _ in reached)
    report.lines.append(f"workspace   reach {reach:.3f} m from the root; {100 * free:.0f}% of random poses collision-free")
    report.lines.append(f"MuJoCo      {model.nbody} bodies, {model.nu} servos, {model.neq} equality constraints, "
                        f"{model.ngeom} geoms, total mass {float(model.body_subtreemass[0]):.3f} kg")
    if config.payload_mass == 0 and float(model.body_subtreemass[0]) > 5:
        report.warnings.append(f"the arm weighs {float(model.body_subtreemass[0]):.1f} kg: check the URDF's <mass> units (kg)")
    try:
        env.reset(seed=0)
        report.lines.append(f"ArmReach    targets sampled in the workspace (control at {config.control_rate:g} Hz)")
    except RuntimeError as err:
        report.warnings.append(f"ArmReach cannot place targets: {err}")
