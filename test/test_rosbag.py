"""Transitions rebuilt from message streams and rosbag2 recordings (no ROS install needed:
messages are serialized with rosbags' type store, as ``ros2 bag record`` stores them)."""

from pathlib import Path

import numpy as np
import pytest

from mbrl_control import cli
from mbrl_control.arm.env import ArmReach
from mbrl_control.arm.interface import ArmInterface
from mbrl_control.data.rosbag import COMMAND, JOINT_STATE, TARGET, BagError, BagWriter, Topics, read_transitions
from mbrl_control.data.transitions import TransitionDataset
from mbrl_control.models import load_model


def _typestore():
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_KILTED)


def record_episodes(env: ArmReach, episodes: int, steps: int, seed: int) -> tuple[TransitionDataset, list]:
    """Run ``env`` with random actions; return its own transitions and the messages a
    driver, a planner and a task would have published: (stamp_ns, topic, kind, payload)."""
    rng = np.random.default_rng(seed)
    dataset = TransitionDataset(16, 5)
    messages, t = [], 0
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        messages.append((t, "target", env.sim.target.copy()))
        messages.append((t + 1, "state", obs[:10].copy()))
        for _ in range(steps):
            action = rng.uniform(-1, 1, 5)
            next_obs, *_ = env.step(action)
            messages.append((t + 2, "command", env.targets.command.copy()))
            messages.append((t + 50, "state", next_obs[:10].copy()))
            dataset.append(obs, np.clip(action, -1, 1), next_obs, episode)
            obs, t = next_obs, t + 50
        t += 100
    return dataset, messages


def write_bag(path: Path, messages: list, names: list[str], order: list[int], extra_joint: bool = False) -> None:
    """The messages as a rosbag2; joint states carry ``names`` with values in ``order``."""
    store = _typestore()
    T = store.types
    stamp0 = T["builtin_interfaces/msg/Time"](sec=0, nanosec=0)
    header = T["std_msgs/msg/Header"](stamp=stamp0, frame_id="base_link")
    writer = BagWriter(path)
    for t, kind, payload in messages:
        if kind == "state":
            q, qd = payload[:5][order], payload[5:10][order]
            state_names = [names[i] for i in order] + (["gripper"] if extra_joint else [])
            if extra_joint:
                q, qd = np.append(q, 0.01), np.append(qd, 0.0)
            msg = T[JOINT_STATE](header=header, name=state_names, position=q, velocity=qd, effort=np.zeros(0))
            writer.write("/joint_states", JOINT_STATE, store.serialize_cdr(msg, JOINT_STATE), t * 1_000_000)
        elif kind == "command":
            layout = T["std_msgs/msg/MultiArrayLayout"](dim=[], data_offset=0)
            msg = T[COMMAND](layout=layout, data=payload.astype(np.float64))
            writer.write("/arm_controller/commands", COMMAND, store.serialize_cdr(msg, COMMAND), t * 1_000_000)
        else:
            point = T["geometry_msgs/msg/Point"](x=payload[0], y=payload[1], z=payload[2])
            msg = T[TARGET](header=header, point=point)
            writer.write("/mbrl/target", TARGET, store.serialize_cdr(msg, TARGET), t * 1_000_000)
    writer.close()


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    env = ArmReach()
    dataset, messages = record_episodes(env, episodes=5, steps=40, seed=3)
    arm = ArmInterface.from_configs(env.sim_config, env.config)
    root = tmp_path_factory.mktemp("bags")
    names = list(arm.joint_names)
    write_bag(root / "ordered", messages, names, list(range(5)))
    write_bag(root / "shuffled", messages, names, [3, 0, 4, 1, 2], extra_joint=True)
    yield arm, dataset, root
    env.close()


def test_the_recorder_rebuilds_the_environments_own_transitions(recording):
    arm, truth, root = recording
    dataset, skipped = read_transitions(root / "ordered", arm.kinematics, arm.targets(), arm.joint_names)
    # the last step of each episode has no successor command: it closes at the next target,
    # except for the very last episode, which never ends
    assert len(dataset) == len(truth) - 1
    np.testing.assert_allclose(dataset.obs, truth.obs[:-1], atol=1e-9)
    np.testing.assert_allclose(dataset.next_obs, truth.next_obs[:-1], atol=1e-9)
    # the action is recovered from consecutive commands; at the joint limits the command
    # moved less than the action asked
    moved = np.isclose(np.abs(dataset.act), np.abs(truth.act[:-1]), atol=1e-6).mean()
    assert moved > 0.9, moved
    np.testing.assert_array_equal(dataset.episode, truth.episode[:-1])
    assert dict(skipped) == {}


def test_joints_are_mapped_by_name(recording):
    arm, _, root = recording
    ordered, _ = read_transitions(root / "ordered", arm.kinematics, arm.targets(), arm.joint_names)
    shuffled, _ = read_transitions(root / "shuffled", arm.kinematics, arm.targets(), arm.joint_names)
    for field in ("obs", "act", "next_obs", "episode", "time"):
        np.testing.assert_array_equal(getattr(shuffled, field), getattr(ordered, field))


def test_fit_from_a_bag_predicts_held_out_episodes(recording, tmp_path, capsys):
    arm, truth, root = recording
    out = tmp_path / "model.pt"
    code = cli.main(["fit", "--bag", str(root / "ordered"), "--model", "mlp", "--out", str(out), "--set", "max_epochs=200"])
    assert code == 0, capsys.readouterr().err
    model = load_model(out, arm.obs_dim, arm.n, derive=arm.derive)
    import torch

    held_out = truth.subset(truth.episode == 4)
    with torch.no_grad():
        predicted = model.predict(*model.inputs(held_out)).mean.numpy()
    q = slice(0, 5)
    error = np.mean((predicted[:, q] - held_out.next_obs[:, q]) ** 2)
    no_change = np.mean((held_out.obs[:, q] - held_out.next_obs[:, q]) ** 2)
    assert error < 0.3 * no_change, (error, no_change)
    assert "held-out" in capsys.readouterr().out


def test_bad_recordings_give_one_clear_error(recording, tmp_path):
    arm, _, root = recording
    read = lambda path, **kw: read_transitions(path, arm.kinematics, arm.targets(), arm.joint_names, **kw)  # noqa: E731
    with pytest.raises(BagError, match="not a rosbag2 recording"):
        read(tmp_path / "missing")
    with pytest.raises(BagError, match=r"no topic\(s\) \['/robot/commands'\]"):
        read(root / "ordered", topics=Topics(commands="/robot/commands"))
    with pytest.raises(BagError, match=r"lacks joint\(s\) \['elbow'\]"):
        read_transitions(root / "ordered", arm.kinematics, arm.targets(), ["shoulder_pan", "shoulder_lift", "elbow", "wrist_flex", "wrist_roll"])
    import shutil

    corrupt = tmp_path / "corrupt"
    shutil.copytree(root / "ordered", corrupt)
    mcap = next(corrupt.glob("*.mcap"))
    mcap.write_bytes(mcap.read_bytes()[: mcap.stat().st_size // 2])
    with pytest.raises(BagError, match="unreadable rosbag2"):
        read(corrupt)


def test_fit_refuses_a_bad_bag_in_one_line(tmp_path, capsys):
    assert cli.main(["fit", "--bag", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mbrl-control fit:") and "not a rosbag2 recording" in err and "\n" not in err


def _write_other_topics(path: Path, version: int = 9) -> None:
    """A bag as another node's `ros2 bag record` leaves it: a standard type and a custom one
    whose definition only the bag stores."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import get_types_from_msg

    store = _typestore()
    store.register(get_types_from_msg("float64 level\nstring note", "my_pkg/msg/Battery"))
    writer = Writer(path, version=version, storage_plugin=StoragePlugin.MCAP)
    writer.open()
    for topic, msgtype, msg in [("/chatter", "std_msgs/msg/String", store.types["std_msgs/msg/String"](data="hi")),
                                ("/battery", "my_pkg/msg/Battery", store.types["my_pkg/msg/Battery"](level=1.0, note="ok"))]:
        writer.write(writer.add_connection(topic, msgtype, typestore=store), 1, store.serialize_cdr(msg, msgtype))
    writer.close()


def test_a_recording_without_the_arms_topics_is_refused_in_one_line(recording, tmp_path):
    """Every bag of it carries other topics only (an empty topic filter once read them all)."""
    arm, _, _ = recording
    for version in (8, 9):
        (tmp_path / str(version)).mkdir()
        _write_other_topics(tmp_path / str(version) / "other_0")
        _write_other_topics(tmp_path / str(version) / "other_1", version)
        with pytest.raises(BagError, match=r"no topic\(s\) \['/joint_states', '/arm_controller/commands', '/mbrl/target'\] "
                                           r"in the recording; it has \['/battery', '/chatter'\]"):
            read_transitions(tmp_path / str(version), arm.kinematics, arm.targets(), arm.joint_names)


def test_other_topics_of_unknown_types_beside_the_arms_are_left_alone(recording, tmp_path):
    """A session recorded with `ros2 bag record -a`: the arm's bag and one of other topics,
    whose custom type the standard type store lacks."""
    arm, truth, root = recording
    import shutil

    shutil.copytree(root / "ordered", tmp_path / "session" / "a_arm")
    _write_other_topics(tmp_path / "session" / "b_other")
    dataset, _ = read_transitions(tmp_path / "session", arm.kinematics, arm.targets(), arm.joint_names)
    assert len(dataset) == len(truth) - 1
