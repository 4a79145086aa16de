"""rosbag2 in and out, through the pure-Python ``rosbags`` library.

The bags are what ``ros2 bag record`` writes (rosbag2, mcap storage, CDR messages), so
``mbrl-control fit --bag`` reads a recording from any ROS 2 install, and the data
collector's bags play back with ``ros2 bag play``. A recording may be one bag or a folder
of bags (the collector closes a segment every second, so a crash loses at most the
segment in progress, which has no ``metadata.yaml`` and is skipped); their messages are
read in name order, which is time order.

    read_transitions(path, kinematics, targets) -> (TransitionDataset, skipped)
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from mbrl_control.arm.commands import JointTargets
from mbrl_control.arm.kinematics import ForwardKinematics
from mbrl_control.data.joints import select_joints
from mbrl_control.data.recorder import TransitionRecorder
from mbrl_control.data.transitions import TransitionDataset

JOINT_STATE = "sensor_msgs/msg/JointState"
COMMAND = "std_msgs/msg/Float64MultiArray"
TARGET = "geometry_msgs/msg/PointStamped"


class BagError(ValueError):
    """A recording could not be used; the message names the bag and the problem."""


@dataclass(frozen=True)
class Topics:
    """The topics a recording carries (DESIGN.md's defaults)."""

    joint_states: str = "/joint_states"
    commands: str = "/arm_controller/commands"
    target: str = "/mbrl/target"

    def types(self) -> dict[str, str]:
        return {self.joint_states: JOINT_STATE, self.commands: COMMAND, self.target: TARGET}


def _typestore():
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_KILTED)


class BagWriter:
    """A rosbag2 (mcap) written one serialized message at a time; :meth:`close` writes its
    ``metadata.yaml`` (a bag without one is the episode a crash interrupted)."""

    def __init__(self, path: str | Path) -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = Writer(self.path, version=9, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        self._typestore = _typestore()
        self._connections: dict[str, object] = {}
        self.messages = 0

    def write(self, topic: str, msgtype: str, data: bytes, stamp_ns: int) -> None:
        """Append one CDR-serialized message of ``msgtype`` (e.g. ``sensor_msgs/msg/JointState``)."""
        connection = self._connections.get(topic)
        if connection is None:
            connection = self._connections[topic] = self._writer.add_connection(topic, msgtype, typestore=self._typestore)
        self._writer.write(connection, int(stamp_ns), bytes(data))
        self.messages += 1

    def close(self) -> None:
        self._writer.close()


def bag_paths(path: str | Path) -> list[Path]:
    """The bags of a recording: ``path`` itself when it is a bag, else its sub-folders that
    are bags, in name order.

    Raises:
        BagError: no bag at ``path``.
    """
    path = Path(path)
    if (path / "metadata.yaml").is_file():
        return [path]
    bags = sorted(p for p in path.iterdir() if (p / "metadata.yaml").is_file()) if path.is_dir() else []
    if not bags:
        what = "no such folder" if not path.exists() else "no metadata.yaml in it or in its sub-folders"
        raise BagError(f"{path}: not a rosbag2 recording ({what})")
    return bags


def messages(path: str | Path, topics: Topics) -> Iterator[tuple[str, int, object]]:
    """``(topic, stamp_ns, message)`` of ``topics`` in a recording, in time order per bag.
    Messages are read with the type definitions the bag stores (rosbag2 metadata version 9,
    mcap schemas) where it has them, else with ROS 2's standard types; the recording's other
    topics, of whatever types, are never read.

    Raises:
        BagError: a bag is unreadable or has a topic of another type, a message of an
            unknown type, or the recording lacks one of the topics.
    """
    from rosbags.highlevel import AnyReader

    wanted = topics.types()
    standard = _typestore()
    bags = bag_paths(path)
    present: set[str] = set()
    for bag in bags:
        try:
            with AnyReader([bag], default_typestore=standard) as reader:
                found = {c.topic: c.msgtype for c in reader.connections}
                wrong = {t: found[t] for t in wanted if t in found and found[t] != wanted[t]}
                if wrong:
                    raise BagError(f"{bag}: topic(s) of the wrong type {wrong}; expected {wanted}")
                present.update(found)
                connections = [c for c in reader.connections if c.topic in wanted]
                if not connections:  # rosbags reads every topic for an empty filter
                    continue
                stores = {}  # topic -> the type store that reads it: the bag's definitions, else the standard ones
                for connection in connections:
                    known = [s for s in (reader.typestore, standard) if connection.msgtype in s.fielddefs]
                    if not known:
                        raise BagError(f"{bag}: {connection.topic} is {connection.msgtype}, whose definition is neither "
                                       "stored in the bag nor one of ROS 2's standard types")
                    stores[connection.topic] = known[0]
                for connection, stamp, raw in reader.messages(connections=connections):
                    yield connection.topic, stamp, _deserialize(stores[connection.topic], raw, connection.msgtype)
        except BagError:
            raise
        except Exception as err:  # rosbags raises several types for damaged bags
            raise BagError(f"{bag}: unreadable rosbag2 (truncated or corrupt?): {type(err).__name__}: {err}") from None
    missing = [t for t in wanted if t not in present]
    if missing:  # one bag of a split recording may lack a topic (it ended early); the recording may not
        raise BagError(f"{path}: no topic(s) {missing} in the recording; it has {sorted(present)}")


def _deserialize(typestore, raw: bytes, msgtype: str) -> object:
    """A CDR message, allowing the final alignment padding (up to 8 bytes) that Fast-CDR
    appends and ``rosbags`` refuses as a size mismatch (more than 3 trailing bytes): rclpy
    serializes a JointState that way, and ``ros2 bag record`` stores what the wire carries."""
    from rosbags.serde import SerdeError

    try:
        return typestore.deserialize_cdr(raw, msgtype)
    except SerdeError:
        msgdef = typestore.get_msgdef(msgtype)
        if raw[1] != 1:  # only little-endian CDR carries this padding in practice
            raise
        message, end = msgdef.deserialize_cdr_le(raw[4:], 0, msgdef.cls, typestore)
        if len(raw) - 4 - end >= 8:
            raise
        return message


def read_transitions(
    path: str | Path,
    kinematics: ForwardKinematics,
    targets: JointTargets,
    joint_names: Sequence[str],
    topics: Topics = Topics(),
) -> tuple[TransitionDataset, Counter[str]]:
    """The transitions a recording holds (see :mod:`mbrl_control.data.recorder`), joints
    mapped by name, and the count of messages and commands skipped, by reason.

    Raises:
        BagError: unreadable bags, missing topics, joints missing from the joint states,
            or a recording without a single transition.
    """
    recorder = TransitionRecorder(kinematics, targets)
    skipped: Counter[str] = Counter()
    n = len(joint_names)
    for topic, stamp, msg in messages(path, topics):
        time = stamp * 1e-9
        if topic == topics.joint_states:
            try:
                recorder.state(*select_joints(msg.name, msg.position, msg.velocity, joint_names))
            except ValueError as err:
                if "lacks joint" in str(err):
                    raise BagError(f"{path}: {topics.joint_states} {err}; the arm's joints are {list(joint_names)}") from None
                skipped[f"joint state: {err}"] += 1
        elif topic == topics.commands:
            command = np.asarray(msg.data, dtype=np.float64)
            if command.shape != (n,) or not np.all(np.isfinite(command)):
                skipped[f"command of shape {list(command.shape)} or not finite"] += 1
                continue
            recorder.command(command, time)
        else:
            point = np.array([msg.point.x, msg.point.y, msg.point.z])
            if not np.all(np.isfinite(point)):
                skipped["target not finite"] += 1
                continue
            recorder.target(point, time)
    skipped.update(recorder.skipped)
    if len(recorder.dataset) == 0:
        raise BagError(f"{path}: no transitions in the recording (skipped: {dict(skipped) or 'nothing'})")
    return recorder.dataset, skipped
