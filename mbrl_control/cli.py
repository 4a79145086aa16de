"""The ``mbrl-control`` command.

    mbrl-control demo     the simulated arm under random exploration, per-episode results
    mbrl-control render   a PNG of the simulated arm
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence


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


def render(args: argparse.Namespace) -> int:
    """Write a PNG of the arm, or say in one line why rendering is unavailable."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    if os.environ["MUJOCO_GL"] == "osmesa":
        os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")
    import matplotlib.image
    import numpy as np

    try:  # importing mujoco loads the GL backend; a missing library fails here or at render
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
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(
            f"rendering unavailable with MUJOCO_GL={os.environ['MUJOCO_GL']}: {type(err).__name__}: {reason} "
            "(install libegl1 for MUJOCO_GL=egl, or libosmesa6 and set MUJOCO_GL=osmesa)",
            file=sys.stderr,
        )
        return 1
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    matplotlib.image.imsave(out, np.asarray(image))
    print(f"wrote {out} ({image.shape[1]}x{image.shape[0]})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mbrl-control", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("demo", help="run the simulated arm and print per-episode results")
    p.add_argument("--episodes", type=int, default=5)
    p.add_argument("--episode-length", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=demo)

    p = commands.add_parser("render", help="write a PNG of the simulated arm")
    p.add_argument("--out", default="arm.png", help="output PNG (default: arm.png)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=20, help="random actions to take before rendering")
    p.set_defaults(func=render)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "episodes", 1) < 1 or getattr(args, "episode_length", 1) < 1 or getattr(args, "steps", 0) < 0:
        build_parser().error("--episodes and --episode-length must be positive, --steps non-negative")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
