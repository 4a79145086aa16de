"""The ``mbrl-control`` command.

    mbrl-control train    model-based RL on a simulated task: progress, CSV/JSON, learning curve
    mbrl-control policy   policy gradient (REINFORCE … PPO): progress, CSV, learning curve, checkpoint
    mbrl-control bringup  the ROS 2 node graph in one process (sim: the arm learns to reach)
    mbrl-control fit      a dynamics model from a rosbag2 recording
    mbrl-control demo     the simulated arm under random exploration, per-episode results
    mbrl-control render   a PNG of the simulated arm
    mbrl-control check-urdf  what the stack makes of a URDF: joints, limits, TCP, servo, warnings
    mbrl-control calibrate   record a Feetech arm's calibration (LeRobot's file layout)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Sequence


def demo(args: argparse.Namespace) -> int:
    """Run the arm under random exploration and report each episode."""
    import gymnasium as gym
    import numpy as np
    from tqdm import tqdm

    from mbrl_control import ENV_ID

    env = gym.make(ENV_ID, episode_length=args.episode_length)
    rng = np.random.default_rng(args.seed)
    env.action_space.seed(args.seed)
    print(f"{ENV_ID}: {args.episodes} episodes of random exploration, {args.episode_length} steps each")
    rows = []
    with tqdm(range(args.episodes), unit="episode", file=sys.stderr) as bar:
        for episode in bar:
            _, info = env.reset(seed=int(rng.integers(2**31)))
            start, episode_return, done = info["distance"], 0.0, False
            while not done:
                _, reward, terminated, truncated, info = env.step(env.action_space.sample())
                episode_return += reward
                done = terminated or truncated
            rows.append((episode, episode_return, start, info["distance"], info["success"]))
            bar.set_postfix(ret=f"{episode_return:.2f}", dist=f"{info['distance']:.3f}")
            tqdm.write(
                f"episode {episode:3d}  return {episode_return:8.2f}  start distance {start:.3f} m  "
                f"final distance {info['distance']:.3f} m  success {info['success']}",
                file=sys.stdout,
            )
    env.close()
    mean_final = np.mean([row[3] for row in rows])
    print(f"mean final distance {mean_final:.3f} m over {len(rows)} episodes (random actions)")
    return 0


def parse_settings(items: Sequence[str]) -> dict[str, Any]:
    """``["horizon=8", "risk=0.5", "probabilistic=false"]`` → typed overrides (JSON
    values where they parse, strings otherwise)."""
    settings = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set {item!r}: expected NAME=VALUE")
        try:
            settings[key] = json.loads(text)
        except json.JSONDecodeError:
            settings[key] = text
    return settings


def train(args: argparse.Namespace) -> int:
    """Model-based RL from scratch; per-episode results to the terminal and ``--out``."""
    import gymnasium as gym
    from tqdm import tqdm

    from mbrl_control.config import ConfigError
    from mbrl_control.loops.mbrl import train_mbrl
    from mbrl_control.loops.report import write_report
    from mbrl_control.tasks import make_env

    try:
        settings = parse_settings(args.set)
        env_settings = parse_settings(args.env_set) | ({"episode_length": args.episode_length} if args.episode_length else {})  # ArmReach's
        env = make_env(args.env, **env_settings)
    except (ValueError, TypeError, gym.error.Error) as err:  # TypeError: a setting the env does not take
        print(f"mbrl-control train: {err}", file=sys.stderr)
        return 2
    out = Path(args.out)
    print(f"{args.env}: {args.model} model, {args.planner} planner, {args.episodes} episodes "
          f"({args.seed_episodes} random), seed {args.seed}; results in {out}/")

    def show(episode) -> None:
        extra = "" if episode.final_distance is None else f"  final distance {episode.final_distance:.3f}"
        hz = "" if episode.phase == "seed" else f"  planning {episode.planning_hz:5.1f} Hz"
        tqdm.write(f"episode {episode.index:3d} {episode.phase:4s}  return {episode.episode_return:8.2f}{extra}"
                   f"  success {episode.success}{hz}  fit {episode.fit_seconds:.1f} s", file=sys.stdout)

    try:
        result = train_mbrl(env, model=args.model, planner=args.planner, episodes=args.episodes,
                            seed_episodes=args.seed_episodes, seed=args.seed, progress=True, callback=show, **settings)
    except ConfigError as err:
        print(f"mbrl-control train: {err}", file=sys.stderr)
        return 2
    finally:
        env.close()
    paths = write_report(result, out, {"env": args.env, "model": args.model, "planner": args.planner,
                                       "seed": args.seed, "settings": settings})
    learned = [e for e in result.episodes if e.phase == "mpc"]
    if learned and learned[-1].success is not None:
        print(f"success in {sum(bool(e.success) for e in learned)} of {len(learned)} planned episodes; "
              f"last: {'reached' if learned[-1].success else 'missed'}")
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def policy(args: argparse.Namespace) -> int:
    """Policy-gradient training; evaluation curve, metrics and the policy checkpoint to ``--out``."""
    import gymnasium as gym

    import mbrl_control  # noqa: F401  (registers the environments)
    from mbrl_control.checkpoint import CheckpointError
    from mbrl_control.config import ConfigError
    from mbrl_control.policies.report import write_policy_report
    from mbrl_control.policies.train import train_policy

    out = Path(args.out)
    try:
        settings = parse_settings(args.set)
        print(f"{args.env}: {args.algo}, {args.steps} environment steps, seed {args.seed}; results in {out}/")
        writer = _tensorboard(out)
        callback = None if writer is None else (lambda m: [writer.add_scalar(k, v, m["env_steps"]) for k, v in m.items() if k != "env_steps"])
        result = train_policy(args.env, algo=args.algo, total_steps=args.steps, seed=args.seed, progress=True,
                              callback=callback, resume=args.resume, **settings)
    except (ValueError, gym.error.Error) as err:  # ConfigError and CheckpointError are ValueErrors
        kind = "setting" if isinstance(err, ConfigError) else "checkpoint" if isinstance(err, CheckpointError) else "error"
        print(f"mbrl-control policy: {kind}: {err}", file=sys.stderr)
        return 2
    for steps, value in result.eval_curve:
        success = dict(result.success_curve).get(steps)
        print(f"{steps:9d} steps  eval return {value:9.2f}" + ("" if success is None else f"  success {success:4.0%}"))
    print(f"{result.steps_per_second:.0f} environment steps/s while training")
    paths = write_policy_report(result, out, title=args.env)
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def bringup(args: argparse.Namespace) -> int:
    """Run a node graph in this process (as ``ros2 launch`` would) and report each episode."""
    import signal
    import time

    # SIGINT stops the graph even where this supervisor was started with it ignored (a
    # background job of a shell without job control), as it stops each rclpy node
    signal.signal(signal.SIGINT, signal.default_int_handler)

    from mbrl_control.checkpoint import write_text
    from mbrl_control.config import ConfigError
    from mbrl_control.nodes.bringup import RunningGraph, parameter_overrides
    from mbrl_control.nodes.graph import GRAPHS

    out = Path(args.out)
    try:
        overrides = parameter_overrides(args.set)
    except ValueError as err:
        print(f"mbrl-control bringup: {err}", file=sys.stderr)
        return 2
    graph_name = "real_feetech" if args.graph == "real" and args.driver == "feetech" else args.graph
    try:
        graph = GRAPHS[graph_name].only(args.nodes)
    except ValueError as err:
        print(f"mbrl-control bringup: --nodes: {err}", file=sys.stderr)
        return 2
    if args.episodes and not graph.controlled:
        print(f"mbrl-control bringup: --episodes counts the episodes of a controller here; {', '.join(graph.nodes)} run until Ctrl-C",
              file=sys.stderr)
        return 2
    if graph_name in ("real_feetech", "emulated"):
        bus = overrides.setdefault("*", {})
        if args.port:
            bus["port"] = args.port
        if args.calibration:
            bus["calibration"] = args.calibration
        if graph_name == "emulated":
            bus.setdefault("port", str((out / "bus").resolve()))
            if "calibration" not in bus:  # the emulated arm as ideally assembled, for both ends of the bus
                bus["calibration"] = str(_emulated_calibration(out, overrides).resolve())
        elif "calibration" not in bus:
            print("mbrl-control bringup real --driver feetech: --calibration FILE is needed (LeRobot's, or mbrl-control calibrate's)", file=sys.stderr)
            return 2
    if args.model:
        overrides.setdefault("dynamics_learner", {}).setdefault("model.type", args.model)
    overrides.setdefault("dynamics_learner", {}).setdefault("out_dir", str(out / "learner"))
    overrides.setdefault("data_collector", {}).setdefault("out_dir", str(out / "data"))
    overrides.setdefault("pg_trainer", {}).setdefault("out_dir", str(out / "trainer"))
    rows: list[dict[str, Any]] = []
    monitor = None

    def show(record) -> None:
        print(monitor.describe(record), flush=True)
        loop = monitor.control_loop()
        rows.append({"episode": record.index, "start_distance": record.start_distance, "final_distance": record.final_distance,
                     "min_distance": record.min_distance, "tick_ms_p95": loop.get("tick_ms_p95", ""),
                     "model_transitions": loop.get("model_transitions", "")})

    model = args.model or "the parameter file's"
    print(f"bringup {graph_name}: {', '.join(graph.nodes)}; {model} model; "
          f"{'until Ctrl-C' if not args.episodes else f'{args.episodes} episodes'}; results in {out}/", flush=True)
    try:
        with RunningGraph(graph, overrides, params_file=args.params, processes=not args.in_process, namespace=args.namespace) as running:
            from mbrl_control.nodes.monitor import EpisodeMonitor

            if graph.controlled:  # episodes are seen where the arm is commanded
                monitor = EpisodeMonitor(show, **running.node_kwargs("episode_monitor"))
                running.spin(monitor)
            try:
                while not running.errors and (not args.episodes or len(monitor.episodes) < args.episodes):
                    time.sleep(0.2)
                    running.check_children()
            except KeyboardInterrupt:
                print("stopping (Ctrl-C)", flush=True)
            finally:
                if monitor is not None:
                    monitor.destroy_node()
            if running.errors:
                raise running.errors[0]
    except (ConfigError, ValueError) as err:
        print(f"mbrl-control bringup: {err}", file=sys.stderr)
        return 2
    if rows:
        for row in rows:  # the simulator's count of commands that came a period late
            row["late_ticks"] = monitor.sim_episodes.get(row["episode"], {}).get("late_ticks", "")
        write_text(out / "episodes.csv", ",".join(rows[0]) + "\n" + "".join(",".join(str(v) for v in row.values()) + "\n" for row in rows))
        _plot_episodes(out / "learning_curve.png", [row["final_distance"] for row in rows], args.graph)
        print(f"wrote {out / 'episodes.csv'}, {out / 'learning_curve.png'}")
        _write_clip(out / "last_episodes.gif", monitor)
    return 0


def _write_clip(path: Path, monitor) -> None:
    """The last episodes the monitor saw, rendered; one line where rendering is unavailable."""
    from mbrl_control.arm.clip import RenderUnavailable, write_clip

    try:
        write_clip(path, list(monitor.motions), sim=monitor.sim_config)
    except (RenderUnavailable, ValueError) as err:
        print(f"no clip of the last episodes: {err}", flush=True)
        return
    print(f"wrote {path} (episodes {', '.join(str(m.index) for m in monitor.motions)})", flush=True)


def _emulated_calibration(out: Path, overrides: dict) -> Path:
    """Write the calibration of the emulated arm (ids 1…n, ranges from its URDF) into ``out``."""
    from mbrl_control.arm.description import load_description
    from mbrl_control.feetech.calibration import calibration_for
    from mbrl_control.resources import default_urdf

    arm = {**overrides.get("*", {}), **overrides.get("emulated_arm", {})}
    description = load_description(arm.get("urdf") or default_urdf(), arm.get("ee_link", "tcp"))
    return calibration_for(description).save(out / "calibration.json")


def fit(args: argparse.Namespace) -> int:
    """Fit a dynamics model on a rosbag2 recording; held-out metrics; a checkpoint for mpc_planner."""
    import numpy as np
    import torch

    from mbrl_control.arm.interface import ArmInterface
    from mbrl_control.arm.reach import ReachConfig
    from mbrl_control.arm.sim import SimConfig
    from mbrl_control.config import ConfigError
    from mbrl_control.data.rosbag import BagError, Topics, read_transitions
    from mbrl_control.models import make_model

    try:
        settings = parse_settings(args.set)
        sim = SimConfig(urdf=args.urdf, ee_link=args.ee_link, joints=tuple(args.joints or ()), limit_margin=args.limit_margin)
        arm = ArmInterface.from_configs(sim, ReachConfig(max_joint_step=args.max_joint_step))
        topics = Topics(args.joint_states, args.commands, args.target)
        dataset, skipped = read_transitions(args.bag, arm.kinematics, arm.targets(), arm.joint_names, topics)
        model = make_model(args.model, arm.obs_dim, arm.n, derive=arm.derive, bounds=arm.model_bounds, **arm.MODEL_LAYOUT, seed=args.seed,
                           **settings)
    except (BagError, ConfigError, ValueError, FileNotFoundError) as err:
        print(f"mbrl-control fit: {err}", file=sys.stderr)
        return 2
    print(f"{args.bag}: {len(dataset)} transitions in {len(dataset.episodes)} episodes"
          + (f"; skipped {dict(skipped)}" if skipped else ""))
    train, test = (dataset.split(args.test_fraction, np.random.default_rng(args.seed))
                   if args.test_fraction > 0 and len(dataset.episodes) > 1 else (dataset, None))
    torch.set_num_threads(args.threads)
    report = model.fit(train)
    print(f"fitted {model.name} on {len(train)} transitions in {report.seconds:.1f} s")
    if test is not None and len(test):
        obs, act, past = model.inputs(test)
        with torch.no_grad():
            prediction = model.predict(obs, act, past)
        S = model.state_dim
        truth = torch.as_tensor(test.next_obs, dtype=torch.float32)[:, :S]
        error = prediction.mean[:, :S] - truth
        change = truth - obs[:, :S]
        mse = float(error.pow(2).mean())
        var = prediction.var[:, :S]
        nll = (f"NLL {float((0.5 * (error.pow(2) / var + var.log() + np.log(2 * np.pi))).mean()):.3f} per dimension"
               if bool((var > 0).all()) else "no NLL (the model predicts no variance)")
        print(f"held-out ({len(test)} transitions, {len(test.episodes)} episodes): MSE {mse:.3g} "
              f"(of a change with variance {float(change.var(0).mean()):.3g}; "
              f"predicting no change: {float(change.pow(2).mean()):.3g}), {nll}")
    path = model.save(args.out)
    print(f"wrote {path}  (mpc_planner: --ros-args -p model_path:={path})")
    return 0


def _plot_episodes(path: Path, final_distances: list[float], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(range(len(final_distances)), final_distances, "o-")
    ax.axhline(0.02, color="grey", linestyle=":", label="success (2 cm)")
    ax.set(xlabel="episode", ylabel="final distance to target (m)", yscale="log", title=f"bringup {title}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _tensorboard(out: Path):
    """A TensorBoard writer into ``out/tensorboard`` where tensorboard is installed, else None."""
    import importlib.util

    if importlib.util.find_spec("tensorboard") is None:
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(out / "tensorboard"))


def render(args: argparse.Namespace) -> int:
    """Write a PNG of the arm, or say in one line why rendering is unavailable."""
    import matplotlib.image
    import numpy as np

    from mbrl_control.arm.clip import RenderUnavailable

    try:  # importing mujoco (under mbrl_control.arm) loads the GL backend; a missing library fails here or at render
        import gymnasium as gym

        from mbrl_control import ENV_ID

        env = gym.make(ENV_ID, render_mode="rgb_array")
        env.reset(seed=args.seed)
        env.action_space.seed(args.seed)
        for _ in range(args.steps):
            env.step(env.action_space.sample())
        image = env.render()
        env.close()
    except Exception as err:
        print(RenderUnavailable.because(err), file=sys.stderr)
        return 1
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    matplotlib.image.imsave(out, np.asarray(image))
    print(f"wrote {out} ({image.shape[1]}x{image.shape[0]})")
    return 0


def check_urdf(args: argparse.Namespace) -> int:
    """Print what the stack will use from a URDF; exit status 1 if it cannot use it."""
    from mbrl_control.arm.check import check_urdf as check

    report = check(args.urdf, args.ee_link, args.servo, args.gripper_opening, tuple(args.joints or ()))
    print(report.text())
    return 0 if report.ok else 1


def calibrate(args: argparse.Namespace) -> int:
    """Record the calibration of an arm on a Feetech bus: middle pose, then a sweep of every joint."""
    import threading

    from mbrl_control.arm.description import load_description
    from mbrl_control.feetech.bus import BusError
    from mbrl_control.feetech.calibrate import RawBus, record_calibration
    from mbrl_control.feetech.calibration import calibration_for
    from mbrl_control.resources import default_urdf

    try:
        if args.ids:
            joints = {}
            for item in args.ids:
                name, _, number = item.partition("=")
                joints[name] = int(number)
        else:
            joints = dict(zip(calibration_for(load_description(args.urdf or default_urdf(), args.ee_link)).names, range(1, 100)))
        bus = RawBus(args.port, args.baudrate, joints)
    except (BusError, ValueError, OSError) as err:
        print(f"mbrl-control calibrate: {err}", file=sys.stderr)
        return 2
    print(f"{len(joints)} servos on {args.port}, torque off: {', '.join(f'{n} (id {i})' for n, i in joints.items())}")
    done = threading.Event()

    def at_middle() -> None:
        input("Move the arm to the middle of its range (every joint half-way between its limits) and press Enter ")
        print("Now move every joint through its whole range, slowly; press Enter when done")
        threading.Thread(target=lambda: (input(), done.set()), daemon=True).start()

    shown = [0.0]

    def sweeping(ranges: dict) -> bool:
        import time

        if time.monotonic() - shown[0] > 0.2:
            print("  ".join(f"{n} {lo}<{now}<{hi}" for n, (lo, now, hi) in ranges.items()), end="\r", flush=True)
            shown[0] = time.monotonic()
        return done.is_set()

    try:
        calibration = record_calibration(bus, at_middle, sweeping)
    except BusError as err:
        print(f"\nmbrl-control calibrate: {err}", file=sys.stderr)
        return 1
    finally:
        bus.close()
    if args.invert:
        from dataclasses import replace

        from mbrl_control.feetech.calibration import Calibration

        calibration = Calibration({n: replace(j, drive_mode=int(n in args.invert)) for n, j in calibration.joints.items()})
    path = calibration.save(args.out)
    print(f"\nwrote {path}: " + ", ".join(f"{n} [{j.range_min}, {j.range_max}]" for n, j in calibration.joints.items()))
    print(f"servo_driver: --ros-args -p calibration:={path}  (or mbrl-control bringup real --driver feetech --calibration {path})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from mbrl_control.models import REGRESSORS
    from mbrl_control.planning import OPTIMIZERS

    parser = argparse.ArgumentParser(prog="mbrl-control", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("train", help="learn a task from scratch by model-based RL (MPC through a learned model)")
    p.add_argument("--env", default="mbrl_control/ArmReach-v0", help="gymnasium id (default: %(default)s)")
    p.add_argument("--model", default="ensemble", choices=tuple(REGRESSORS))
    p.add_argument("--planner", default="cem", choices=tuple(OPTIMIZERS))
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--seed-episodes", type=int, default=1, help="episodes of random actions first")
    p.add_argument("--episode-length", type=int, default=None, help="override the env's episode length")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="any loop, MPC, optimiser or model setting, e.g. --set horizon=8 --set hidden=128; "
                        "a name the optimiser and the model share needs its kind: --set model.iterations=200")
    p.add_argument("--env-set", action="append", default=[], metavar="NAME=VALUE",
                   help="an environment setting, e.g. --env-set urdf=so101_new_calib.urdf --env-set ee_link=gripper_frame_link --env-set action_latency=2")
    p.add_argument("--out", default="runs/mbrl", help="directory for episodes.csv/json, learning_curve.png, "
                   "model.pt and transitions.npz (default: %(default)s)")
    p.set_defaults(func=train)

    p = commands.add_parser("policy", help="train a neural policy by policy gradient (REINFORCE, A2C, NPG, TRPO, PPO)")
    p.add_argument("--env", default="mbrl_control/ArmReach-v0", help="gymnasium id (default: %(default)s)")
    p.add_argument("--algo", default="ppo", choices=("reinforce", "a2c", "npg", "trpo", "ppo", "ppo_kl"))
    p.add_argument("--steps", type=int, default=100_000, help="environment steps in all (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", default=None, help="continue from a policy.pt of an earlier run")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="any PolicyConfig setting, e.g. --set n_envs=4 --set squash=true --set learning_rate=1e-4")
    p.add_argument("--out", default="runs/policy", help="directory for policy.pt, updates.csv, eval.csv and "
                   "learning_curve.png (default: %(default)s)")
    p.set_defaults(func=policy)

    from mbrl_control.nodes.graph import GRAPHS  # no rclpy: cheap

    p = commands.add_parser("bringup", help="run the ROS 2 node graph in this process, as its launch file would")
    p.add_argument("graph", nargs="?", default="sim", choices=tuple(GRAPHS))
    p.add_argument("--episodes", type=int, default=0, help="stop after this many episodes (0: run until Ctrl-C)")
    p.add_argument("--model", default=None, choices=tuple(REGRESSORS),
                   help="dynamics_learner's model.type (default: the parameter file's; ensemble in sim, gp on a real arm)")
    p.add_argument("--params", default=None, help="ROS parameter file (default: config/<graph's>.yaml)")
    p.add_argument("--set", action="append", default=[], metavar="[NODE.]NAME=VALUE",
                   help="a parameter, e.g. --set mpc_planner.horizon=12 --set sim_node.real_time_factor=2")
    p.add_argument("--out", default="runs/bringup", help="data, model, episodes.csv and learning_curve.png (default: %(default)s)")
    p.add_argument("--in-process", action="store_true", help="all nodes in this process (default: one child process per node)")
    p.add_argument("--namespace", default="", help="namespace of every node and topic, /clock and /diagnostics included (e.g. arm1)")
    p.add_argument("--nodes", default="", metavar="NODE,...",
                   help="run only these nodes of the graph, the part on this computer (e.g. dynamics_learner on a workstation; the rest next to the arm)")
    p.add_argument("--driver", default="none", choices=("none", "feetech"),
                   help="real: the arm's driver (none: a ros2_control driver already runs; feetech: servo_driver on a Feetech bus)")
    p.add_argument("--port", default="", help="feetech: the bus adapter's serial port (default: servo_driver's /dev/ttyACM0)")
    p.add_argument("--calibration", default="", help="feetech: the servos' calibration file (LeRobot's JSON or mbrl-control calibrate's)")
    p.set_defaults(func=bringup)

    p = commands.add_parser("fit", help="fit a dynamics model on a rosbag2 recording (for mpc_planner's model_path)")
    p.add_argument("--bag", required=True, help="a rosbag2 folder (mcap or sqlite3), or a folder of them")
    p.add_argument("--model", default="ensemble", choices=tuple(REGRESSORS))
    p.add_argument("--out", default="model.pt", help="checkpoint to write (default: %(default)s)")
    p.add_argument("--test-fraction", type=float, default=0.2, help="episodes held out for the reported metrics")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a model setting, e.g. --set hidden=128")
    p.add_argument("--urdf", default="", help="the arm's URDF (default: the packaged so_arm5.urdf)")
    p.add_argument("--ee-link", default="tcp")
    p.add_argument("--joints", nargs="*", default=None, help="the arm joints in the command message's order (default: the URDF's chain to --ee-link)")
    p.add_argument("--limit-margin", type=float, default=0.02)
    p.add_argument("--max-joint-step", type=float, default=0.1, help="rad per tick of an action of ±1")
    p.add_argument("--joint-states", default="/joint_states")
    p.add_argument("--commands", default="/arm_controller/commands")
    p.add_argument("--target", default="/mbrl/target")
    p.set_defaults(func=fit)

    p = commands.add_parser("demo", help="run the simulated arm and print per-episode results")
    p.add_argument("--episodes", type=int, default=5)
    p.add_argument("--episode-length", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=demo)

    from mbrl_control.arm.servos import SERVOS

    p = commands.add_parser("check-urdf", help="print what the stack makes of a URDF (joints, limits, TCP, servo profile, warnings)")
    p.add_argument("urdf", help="the arm's URDF, as its maker published it")
    p.add_argument("--ee-link", default="tcp", help="the link whose origin is the tool centre point (default: %(default)s)")
    p.add_argument("--servo", default="sts3215", choices=tuple(SERVOS), help="servo profile for torque and speed (default: %(default)s)")
    p.add_argument("--gripper-opening", type=float, default=0.01, help="gripper position held while reaching (m or rad)")
    p.add_argument("--joints", nargs="*", default=None, help="the arm joints to command (default: every revolute joint on the chain to --ee-link)")
    p.set_defaults(func=check_urdf)

    p = commands.add_parser("calibrate", help="record a Feetech arm's calibration: middle pose, then sweep each joint (LeRobot's file layout)")
    p.add_argument("--port", default="/dev/ttyACM0", help="the bus adapter's serial port (default: %(default)s)")
    p.add_argument("--baudrate", type=int, default=1_000_000)
    p.add_argument("--out", required=True, help="calibration file to write (.json, or .yaml)")
    p.add_argument("--urdf", default="", help="the arm's URDF: its joints get ids 1…n in chain order (default: so_arm5.urdf)")
    p.add_argument("--ee-link", default="tcp")
    p.add_argument("--ids", nargs="*", default=None, metavar="JOINT=ID", help="the servos instead, e.g. shoulder_pan=1 … gripper=6")
    p.add_argument("--invert", nargs="*", default=[], metavar="JOINT", help="joints whose servo turns against the URDF's axis (drive_mode 1)")
    p.set_defaults(func=calibrate)

    p = commands.add_parser("render", help="write a PNG of the simulated arm")
    p.add_argument("--out", default="arm.png", help="output PNG (default: arm.png)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=20, help="random actions to take before rendering")
    p.set_defaults(func=render)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    length = getattr(args, "episode_length", None)
    if getattr(args, "episodes", 1) < (0 if args.command == "bringup" else 1) or (length is not None and length < 1) or getattr(args, "steps", 0) < 0:
        build_parser().error("--episodes and --episode-length must be positive, --steps non-negative")
    if args.command == "policy" and args.steps < 1:
        build_parser().error("--steps must be positive")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
