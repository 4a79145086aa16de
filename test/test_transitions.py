"""The transition dataset refuses bad rows, splits by episode or by row and survives save/load."""

import numpy as np
import pytest

from mbrl_control.checkpoint import CheckpointError
from mbrl_control.data import TransitionDataset


def dataset(episodes: int = 5, steps: int = 10, seed: int = 0) -> TransitionDataset:
    rng = np.random.default_rng(seed)
    data = TransitionDataset(obs_dim=3, act_dim=2)
    for episode in range(episodes):
        obs = rng.normal(size=(steps + 1, 3))
        data.append(obs[:-1], rng.normal(size=(steps, 2)), obs[1:], episode=episode)
    return data


def test_append_single_rows_and_batches():
    data = TransitionDataset(3, 2)
    data.append(np.zeros(3), np.zeros(2), np.ones(3), episode=7, time=0.5)
    data.append(np.zeros((4, 3)), np.zeros((4, 2)), np.ones((4, 3)), episode=8)
    assert len(data) == 5 and data.episodes.tolist() == [7, 8]
    assert data.time.tolist() == [0.5, 0.0, 1.0, 2.0, 3.0]


@pytest.mark.parametrize(
    "obs, act, next_obs, reason",
    [
        (np.zeros((2, 4)), np.zeros((2, 2)), np.zeros((2, 3)), r"obs must have shape \[2, 3\], got \[2, 4\]"),
        (np.zeros((2, 3)), np.zeros((3, 2)), np.zeros((2, 3)), r"act must have shape \[2, 2\]"),
        (np.zeros((2, 3)), np.zeros((2, 2)), [[0, 0, 0], [0, np.nan, 0]], r"next_obs has NaN/inf in row\(s\) \[1\]"),
        (np.zeros((2, 3)), [[0, np.inf], [0, 0]], np.zeros((2, 3)), r"act has NaN/inf in row\(s\) \[0\]"),
    ],
)
def test_bad_rows_are_refused_and_nothing_is_added(obs, act, next_obs, reason):
    data = dataset(episodes=1)
    with pytest.raises(ValueError, match=reason):
        data.append(obs, act, next_obs, episode=1)
    assert len(data) == 10


def test_split_is_by_episode():
    data = dataset(episodes=10)
    train, val = data.split(0.3, np.random.default_rng(1))
    assert len(train) + len(val) == len(data)
    assert set(train.episodes).isdisjoint(val.episodes)
    assert len(val.episodes) == 3


def test_split_of_a_single_episode_holds_out_its_end():
    train, val = dataset(episodes=1, steps=10).split(0.2, np.random.default_rng(0))
    assert train.time.max() < val.time.min() and len(val) == 2


def test_row_split_draws_from_every_episode():
    data = dataset(episodes=4, steps=25)
    train, val = data.split_rows(0.2, np.random.default_rng(0))
    assert len(val) == 20 and len(train) == 80
    assert set(val.episodes) == set(train.episodes) == {0, 1, 2, 3}
    rows = {tuple(r) for r in train.obs} | {tuple(r) for r in val.obs}
    assert len(rows) == 100  # a partition: nothing lost, nothing twice
    assert len(data.split_rows(0.0, np.random.default_rng(0))[1]) == 0


def test_empty_dataset_cannot_be_split():
    with pytest.raises(ValueError, match="dataset is empty"):
        TransitionDataset(3, 2).split(0.2, np.random.default_rng(0))
    with pytest.raises(ValueError, match="dataset is empty"):
        TransitionDataset(3, 2).split_rows(0.2, np.random.default_rng(0))


def test_save_load_round_trip(tmp_path):
    data = dataset()
    data.save(tmp_path / "d.npz")
    loaded = TransitionDataset.load(tmp_path / "d.npz")
    for name in ("obs", "act", "next_obs", "episode", "time"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(data, name))
    assert not list(tmp_path.glob(".*.tmp")), "temporary file left behind"


def test_corrupt_and_foreign_files_give_one_clear_error(tmp_path):
    path = tmp_path / "d.npz"
    dataset().save(path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match=f"{path}: unreadable transition dataset"):
        TransitionDataset.load(path)
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(CheckpointError, match="unreadable transition dataset"):
        TransitionDataset.load(tmp_path / "other.npz")


def test_failed_save_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "d.npz"
    dataset(episodes=2).save(path)
    monkeypatch.setattr(np, "savez", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        dataset(episodes=5).save(path)
    assert len(TransitionDataset.load(path)) == 20
    assert not list(tmp_path.glob(".*.tmp"))


def test_action_history_reads_the_episode_before_each_step_and_restarts_at_gaps():
    data = TransitionDataset(obs_dim=1, act_dim=1)
    data.append([[0], [1], [2]], [[1], [2], [3]], [[1], [2], [3]], episode=0)  # 0 -> 1 -> 2 -> 3
    # episode 1, appended out of time order, with a gap: 11 -> 12 is followed by 20 -> 21
    data.append([[10], [20], [11]], [[5], [7], [6]], [[11], [21], [12]], episode=1, time=[0, 2, 1])
    past = data.action_history(2)
    assert past.shape == (6, 2, 1)
    np.testing.assert_array_equal(past[:, :, 0], [[0, 0], [0, 1], [1, 2], [0, 0], [0, 0], [0, 5]])
    assert data.action_history(0).shape == (6, 0, 1)


def test_concatenated_recordings_keep_their_episodes_apart():
    """Two arms' datasets, both with episodes 0 and 1: in one dataset their episodes stay
    four, and action histories never cross from one arm's episode into the other's."""
    def recording(value: float) -> TransitionDataset:
        data = TransitionDataset(2, 1)
        for episode in (0, 1):
            for _ in range(3):
                data.append(np.full(2, value), np.full(1, value), np.full(2, value), episode=episode)
        return data

    union = TransitionDataset.concatenate([recording(1.0), recording(2.0)])
    assert len(union) == 12 and len(union.episodes) == 4
    history = union.action_history(2)
    first_of_second_arm = np.flatnonzero(union.act[:, 0] == 2.0)[0]
    assert np.all(history[first_of_second_arm] == 0.0)  # no actions of arm 1 before arm 2's first step
