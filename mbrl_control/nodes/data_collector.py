"""``data_collector``: joint states, commands and targets in; episodes of transitions out.

Forms transitions at the commands' rate (:mod:`mbrl_control.data.recorder`), joints
mapped by name, and splits episodes at target changes. Each finished episode is announced
on ``mbrl/episodes`` (its transitions as ``.npz`` bytes, latched with history, so a
learner on another machine — or one that starts late — gets every episode).

Crash safety: every ``flush_period`` seconds the dataset, the episode in progress
included, is saved to ``<out_dir>/dataset.npz`` (atomically: a crash leaves the previous
save) and the rosbag2 segment in progress is closed (mcap, one bag per segment under
``<out_dir>/bags``, named ``episode_<episode>_<segment>`` so that name order is time
order). A SIGKILL therefore loses at most ``flush_period`` of transitions; the segment it
interrupts has no ``metadata.yaml`` and readers skip it (``ros2 bag reindex`` recovers it).
On restart the collector resumes from the dataset on disk and announces it once, so a
learner gets the episode the crash cut short. A failed write (a full disk) is logged and
retried at the next flush; nothing in memory is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from geometry_msgs.msg import PointStamped
from rclpy.node import Node
from rclpy.serialization import serialize_message
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray, UInt8MultiArray

from mbrl_control.config import Config, param
from mbrl_control.data.recorder import TransitionRecorder
from mbrl_control.data.rosbag import COMMAND, JOINT_STATE, TARGET as TARGET_TYPE, BagWriter
from mbrl_control.data.transitions import TransitionDataset
from mbrl_control.nodes.common import (
    COMMANDS, CONTROL, EPISODES, EPISODES_TOPIC, JOINT_STATES, TARGET, Throttle, bind_arm, bytes_message, spin,
)
from mbrl_control.nodes.messages import joint_state_to_arrays
from mbrl_control.nodes.params import ParameterBinding


@dataclass(frozen=True)
class CollectorConfig(Config):
    """Settings of the data collector."""

    out_dir: str = param("runs/ros/data", "Folder of the dataset (dataset.npz) and the bags (bags/).", read_only=True)
    record_bag: bool = param(True, "Write every message heard to rosbag2 (mcap) segments under bags/.")
    flush_period: float = param(1.0, "Seconds between saves of the dataset and closes of the bag segment in progress: what a crash can lose.",
                                low=0.05, high=3600.0)


class DataCollectorNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("data_collector", **kwargs)
        self.arm_params, self.arm = bind_arm(self)
        self.params = ParameterBinding(self, CollectorConfig())
        self.out_dir = Path(self.params[CollectorConfig].out_dir)
        self.dataset_path = self.out_dir / "dataset.npz"
        dataset = TransitionDataset.resume(self.dataset_path, self.arm.obs_dim, self.arm.n)
        if len(dataset):
            self.get_logger().info(f"resuming {dataset}")
        self.recorder = TransitionRecorder(self.arm.kinematics, self.arm.targets(), dataset)
        self.bag: BagWriter | None = None
        self.segment = 0
        self.saved_size = len(dataset)
        self.last_flush = self.now()
        self.bad_state, self.bad_command, self.bad_target = Throttle(), Throttle(), Throttle()
        self.write_failed = Throttle()
        self.publisher = self.create_publisher(UInt8MultiArray, EPISODES_TOPIC, EPISODES)
        if len(dataset):  # the episode a crash cut short, and any a learner missed
            self.publisher.publish(bytes_message(dataset.to_bytes()))
        self.create_subscription(JointState, JOINT_STATES, self.on_joint_state, CONTROL)
        self.create_subscription(Float64MultiArray, COMMANDS, self.on_command, CONTROL)
        self.create_subscription(PointStamped, TARGET, self.on_target, CONTROL)
        self.episodes_announced = 0

    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def record(self, topic: str, msgtype: str, msg: object) -> None:
        if self.bag is None:
            return
        try:
            self.bag.write(self.resolve_topic_name(topic), msgtype, serialize_message(msg), self.get_clock().now().nanoseconds)
        except OSError as err:
            self.write_failed(self.get_logger().error, f"bag {self.bag.path} not written, recording the bag stops "
                                                       f"until the next segment: {err}")
            self._close_bag()

    def on_joint_state(self, msg: JointState) -> None:
        try:
            q, qd = joint_state_to_arrays(msg, self.arm.joint_names)
        except ValueError as err:
            self.bad_state(self.get_logger().warning, f"joint state refused: {err}")
            return
        self.recorder.state(q, qd)
        self.record(JOINT_STATES, JOINT_STATE, msg)

    def on_command(self, msg: Float64MultiArray) -> None:
        command = np.asarray(msg.data, dtype=np.float64)
        if command.shape != (self.arm.n,) or not np.all(np.isfinite(command)):
            self.bad_command(self.get_logger().warning, f"command refused: need {self.arm.n} finite values, got {command.tolist()}")
            return
        self.recorder.command(self.arm.from_controller(command), self.now())
        self.record(COMMANDS, COMMAND, msg)
        if self.now() - self.last_flush >= self.params[CollectorConfig].flush_period:
            self.flush()

    def on_target(self, msg: PointStamped) -> None:
        target = np.array([msg.point.x, msg.point.y, msg.point.z])
        if not np.all(np.isfinite(target)):
            self.bad_target(self.get_logger().warning, f"target refused: not finite {target.tolist()}")
            return
        episode = self.recorder.episode
        if self.recorder.target(target, self.now()):
            self.finish(episode)
            self.segment = 0
            self._open_bag()
        self.record(TARGET, TARGET_TYPE, msg)

    def flush(self) -> None:
        """Save the dataset (the episode in progress too) and start a new bag segment."""
        self.last_flush = self.now()
        self.save()
        self._close_bag()
        self.segment += 1
        self._open_bag()

    def save(self) -> bool:
        """Write the dataset atomically when it grew; False when the write failed (the
        file on disk is the previous save, the transitions stay in memory)."""
        dataset = self.recorder.dataset
        if len(dataset) == self.saved_size:
            return True
        try:
            dataset.save(self.dataset_path)
        except OSError as err:
            self.write_failed(self.get_logger().error, f"{self.dataset_path} not saved ({len(dataset)} transitions "
                                                       f"kept in memory, retried in {self.params[CollectorConfig].flush_period} s): {err}")
            return False
        self.saved_size = len(dataset)
        return True

    def _open_bag(self) -> None:
        if not self.params[CollectorConfig].record_bag or self.recorder.episode < 0:
            return
        path = self.out_dir / "bags" / f"episode_{self.recorder.episode:05d}_{self.segment:05d}"
        try:
            self.bag = BagWriter(path)
        except Exception as err:  # rosbags raises its own errors besides OSError (an existing folder)
            self.write_failed(self.get_logger().error, f"bag {path} not opened: {type(err).__name__}: {err}")

    def _close_bag(self) -> None:
        bag, self.bag = self.bag, None
        if bag is None:
            return
        try:
            bag.close()
        except OSError as err:
            self.write_failed(self.get_logger().error, f"bag {bag.path} not closed: {err}")

    def finish(self, episode: int) -> None:
        """Close the episode's bag; save and announce its transitions."""
        self._close_bag()
        dataset = self.recorder.dataset
        part = dataset.subset(dataset.episode == episode)
        if not len(part):
            return
        self.save()
        self.publisher.publish(bytes_message(part.to_bytes()))
        self.episodes_announced += 1
        skipped = dict(self.recorder.skipped)
        self.get_logger().info(f"episode {episode}: {len(part)} transitions; dataset {len(dataset)}"
                               + (f"; skipped {skipped}" if skipped else ""))

    def close(self) -> None:
        self._close_bag()
        self.save()


def main(args: list[str] | None = None) -> None:
    spin(DataCollectorNode, args)


if __name__ == "__main__":
    main()
