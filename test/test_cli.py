"""The mbrl-control command: train, demo and render."""

import os
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from mbrl_control.cli import main


def test_demo_prints_each_episode(capsys):
    assert main(["demo", "--episodes", "2", "--episode-length", "5", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    episodes = [line for line in out.splitlines() if line.startswith("episode ")]
    assert [line.split()[1] for line in episodes] == ["0", "1"]
    assert all("final distance" in line and "return" in line for line in episodes)
    assert "mean final distance" in out


def test_demo_refuses_bad_arguments():
    with pytest.raises(SystemExit):
        main(["demo", "--episodes", "0"])


def run_render(tmp_path, backend):
    out = tmp_path / "arm.png"
    env = {**os.environ, "MUJOCO_GL": backend}
    result = subprocess.run(
        [sys.executable, "-m", "mbrl_control.cli", "render", "--out", str(out), "--steps", "5"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    return result, out


def test_render_writes_a_png_or_says_why(tmp_path):
    result, out = run_render(tmp_path, os.environ.get("MUJOCO_GL", "egl"))
    if result.returncode == 0:
        image = matplotlib.image.imread(out)
        assert image.shape[:2] == (480, 640)
        assert np.asarray(image)[..., :3].std() > 0.05  # a scene, not a blank frame
    else:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("rendering unavailable"), result.stderr


def test_render_without_a_gl_backend_says_why_in_one_line(tmp_path):
    result, out = run_render(tmp_path, "no-such-backend")
    assert result.returncode == 1 and not out.exists()
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "rendering unavailable with MUJOCO_GL=no-such-backend" in lines[0]


def test_train_learns_and_writes_its_report(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--model", "mlp", "--episodes", "2", "--episode-length", "20", "--out", str(out),
                 "--set", "hidden=32", "--set", "horizon=3", "--set", "population=20", "--set", "elites=4"])
    assert code == 0
    text = capsys.readouterr().out
    assert [line.split()[1:3] for line in text.splitlines() if line.startswith("episode ")] == [["0", "seed"], ["1", "mpc"]]
    rows = (out / "episodes.csv").read_text().splitlines()
    assert rows[0].startswith("index,phase,episode_return") and len(rows) == 3
    assert matplotlib.image.imread(out / "learning_curve.png").ndim == 3
    from mbrl_control.data import TransitionDataset
    from mbrl_control.models import load_model

    assert len(TransitionDataset.load(out / "transitions.npz")) == 40
    assert load_model(out / "model.pt", 16, 5).dataset_size == 40


def test_train_refuses_bad_settings_with_the_reason(tmp_path, capsys):
    assert main(["train", "--episodes", "1", "--set", "horizon=0", "--out", str(tmp_path)]) == 2
    assert "horizon = 0: must be >= 1" in capsys.readouterr().err
    assert main(["train", "--episodes", "1", "--set", "horizon", "--out", str(tmp_path)]) == 2
    assert "expected NAME=VALUE" in capsys.readouterr().err


def test_train_takes_the_env_settings_of_a_users_arm(tmp_path, capsys):
    urdf = Path(__file__).parent / "urdf" / "cad_jaw.urdf"
    assert main(["train", "--model", "mlp", "--episodes", "2", "--episode-length", "20", "--out", str(tmp_path / "run"),
                 "--set", "horizon=3", "--set", "population=20", "--set", "elites=4",
                 "--env-set", f"urdf={urdf}", "--env-set", "ee_link=gripper_frame_link", "--env-set", "action_latency=1"]) == 0
    assert "episode   1 mpc" in capsys.readouterr().out
    assert main(["train", "--episodes", "1", "--env-set", f"urdf={urdf}", "--out", str(tmp_path)]) == 2
    assert "no link named 'tcp'" in capsys.readouterr().err
    assert main(["train", "--env", "Pusher-v5", "--episodes", "1", "--env-set", "payload_mass=1", "--out", str(tmp_path)]) == 2
    assert "payload_mass" in capsys.readouterr().err


def test_policy_trains_writes_its_report_and_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    common = ["--algo", "ppo", "--set", "n_steps=200", "--set", "batch_size=50", "--set", "eval_every=200",
              "--set", "eval_episodes=1", "--out", str(out)]
    assert main(["policy", "--steps", "400", *common]) == 0
    text = capsys.readouterr().out
    assert [line.split()[0] for line in text.splitlines() if "eval return" in line] == ["0", "200", "400"]
    assert (out / "eval.csv").read_text().splitlines()[0] == "env_steps,eval_return,success_rate"
    assert len((out / "updates.csv").read_text().splitlines()) == 3
    assert matplotlib.image.imread(out / "learning_curve.png").ndim == 3
    from mbrl_control.policies import load_policy

    assert load_policy(out / "policy.pt", 16, 5).obs_norm.count.item() == 400
    assert main(["policy", "--steps", "600", "--resume", str(out / "policy.pt"), *common]) == 0
    assert load_policy(out / "policy.pt").obs_norm.count.item() == 600


def test_policy_refuses_bad_settings_and_checkpoints_with_the_reason(tmp_path, capsys):
    assert main(["policy", "--steps", "100", "--set", "gamma=1.5", "--out", str(tmp_path)]) == 2
    assert "gamma = 1.5: must be <= 1" in capsys.readouterr().err
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    assert main(["policy", "--steps", "100", "--resume", str(broken), "--out", str(tmp_path)]) == 2
    assert "broken.pt" in capsys.readouterr().err


def test_a_name_two_configs_share_is_routed_by_its_kind_or_refused():
    """`--model gp --set iterations=200`: CEM's or the GP's? Refused with both dotted names;
    `model.iterations` and `optimizer.iterations` reach their own config."""
    from mbrl_control.config import ConfigError, split_overrides
    from mbrl_control.loops.mbrl import MBRLConfig
    from mbrl_control.models.gp import GPConfig
    from mbrl_control.planning.mpc import MPCConfig
    from mbrl_control.planning.optimizers import CEMConfig

    configs = (MBRLConfig, MPCConfig, ("optimizer", CEMConfig), ("model", GPConfig))
    with pytest.raises(ConfigError, match=r"'iterations' is ambiguous: it is optimizer.iterations and model.iterations"):
        split_overrides({"iterations": 200}, *configs)
    _, _, optimizer, model = split_overrides({"model.iterations": 200, "optimizer.iterations": 3, "elites": 4}, *configs)
    assert model == {"iterations": 200} and optimizer == {"iterations": 3, "elites": 4}
    with pytest.raises(ConfigError, match="unknown setting 'model.population'"):
        split_overrides({"model.population": 3}, *configs)


def test_the_registries_are_the_only_source_of_choices():
    """A newly registered optimiser is offered by the CLI and the planner's parameter (its
    description and its check), with no list to edit (the launch files: test_launch.py)."""
    import dataclasses

    from mbrl_control.cli import build_parser
    from mbrl_control.planning.mpc import MPCConfig
    from mbrl_control.planning.optimizers import OPTIMIZERS, RandomShooting

    class Fake(RandomShooting):
        name = "fake_for_test"

    try:
        train = next(a for a in build_parser()._subparsers._group_actions[0].choices["train"]._actions if a.dest == "planner")
        assert "fake_for_test" in train.choices
        assert MPCConfig().replace(optimizer="fake_for_test").optimizer == "fake_for_test"
        field = next(f for f in dataclasses.fields(MPCConfig) if f.name == "optimizer")
        pytest.importorskip("rclpy")
        from mbrl_control.nodes.params import descriptor

        assert "fake_for_test" in descriptor(field).description
    finally:
        del OPTIMIZERS["fake_for_test"]


def test_a_registered_policy_method_is_offered_by_the_trainer_with_its_own_settings():
    """A new PolicyMethod subclass is a value of pg_trainer's ``method`` at once, and its
    Config is what the node declares under ``method.*``."""
    import dataclasses

    from mbrl_control.config import Config, ConfigError, param
    from mbrl_control.loops.policy_methods import POLICY_METHODS, PolicyGradient

    pytest.importorskip("rclpy")
    from mbrl_control.nodes.params import descriptor
    from mbrl_control.nodes.pg_trainer import TrainerConfig

    @dataclasses.dataclass(frozen=True)
    class FakeConfig(Config):
        fake_rate: float = param(0.5, "A setting of the fake method.", low=0.0, high=1.0)

    class FakeMethod(PolicyGradient):
        name = "fake_method_for_test"
        Config = FakeConfig

    try:
        assert TrainerConfig().replace(method="fake_method_for_test").method == "fake_method_for_test"
        field = next(f for f in dataclasses.fields(TrainerConfig) if f.name == "method")
        assert "fake_method_for_test" in descriptor(field).description
        with pytest.raises(ConfigError, match="dagger"):  # a name no class registered: refused, naming the choices
            TrainerConfig().replace(method="no_such_method")
    finally:
        del POLICY_METHODS["fake_method_for_test"]
