"""A dataset of transitions ``(obs, act, next_obs)`` with episode ids and time stamps."""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO

import numpy as np

from mbrl_control.checkpoint import CheckpointError, atomic_write, source_name

FIELDS = ("obs", "act", "next_obs", "episode", "time")
FORMAT = "mbrl_control.transitions/1"


class TransitionDataset:
    """Transitions of a system, appended as they are collected.

    Arrays (N transitions):
        obs [N, obs_dim], act [N, act_dim], next_obs [N, obs_dim]: float64
        episode [N]: int64 episode id; time [N]: float64 time stamp (s) of ``obs``

    Every append is checked: shapes must agree with the dataset's dims and values must
    be finite, so a bad row never reaches a model.
    """

    def __init__(self, obs_dim: int, act_dim: int) -> None:
        if obs_dim < 1 or act_dim < 1:
            raise ValueError(f"obs_dim and act_dim must be positive, got {obs_dim} and {act_dim}")
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self._size = 0
        self._steps: dict[int, int] = {}  # transitions per episode id, for default time stamps
        # storage grows by doubling, so appending row by row costs amortised O(1)
        self._buffers = self._allocate(16)

    def _allocate(self, capacity: int) -> dict[str, np.ndarray]:
        return {
            "obs": np.empty((capacity, self.obs_dim)),
            "act": np.empty((capacity, self.act_dim)),
            "next_obs": np.empty((capacity, self.obs_dim)),
            "episode": np.empty(capacity, dtype=np.int64),
            "time": np.empty(capacity),
        }

    @property
    def obs(self) -> np.ndarray:
        return self._buffers["obs"][: self._size]

    @property
    def act(self) -> np.ndarray:
        return self._buffers["act"][: self._size]

    @property
    def next_obs(self) -> np.ndarray:
        return self._buffers["next_obs"][: self._size]

    @property
    def episode(self) -> np.ndarray:
        return self._buffers["episode"][: self._size]

    @property
    def time(self) -> np.ndarray:
        return self._buffers["time"][: self._size]

    def __len__(self) -> int:
        return self._size

    def __repr__(self) -> str:
        return (f"TransitionDataset({len(self)} transitions, {len(self.episodes)} episodes, "
                f"obs_dim={self.obs_dim}, act_dim={self.act_dim})")

    @property
    def episodes(self) -> np.ndarray:
        """The distinct episode ids, sorted."""
        return np.unique(self.episode)

    def append(
        self,
        obs: np.ndarray,
        act: np.ndarray,
        next_obs: np.ndarray,
        episode: int | np.ndarray,
        time: float | np.ndarray | None = None,
    ) -> None:
        """Append one transition (1-D arrays) or a batch ([B, ·] arrays).

        ``time`` defaults to the position within the episode, counting from 0.

        Raises:
            ValueError: shapes disagree with the dataset or each other, or a value is
                NaN/inf (the message gives the array and the offending rows).
        """
        obs, act, next_obs = (np.atleast_2d(np.asarray(a, dtype=np.float64)) for a in (obs, act, next_obs))
        rows = len(obs)
        for name, array, dim in (("obs", obs, self.obs_dim), ("act", act, self.act_dim), ("next_obs", next_obs, self.obs_dim)):
            if array.ndim != 2 or array.shape != (rows, dim):
                raise ValueError(f"{name} must have shape [{rows}, {dim}], got {list(array.shape)}")
        episode = np.broadcast_to(np.asarray(episode, dtype=np.int64), (rows,))
        if time is None:
            start = self._steps.get(int(episode[0]), 0) if rows else 0
            time = np.arange(start, start + rows, dtype=np.float64)
        time = np.broadcast_to(np.asarray(time, dtype=np.float64), (rows,))
        for name, array in (("obs", obs), ("act", act), ("next_obs", next_obs), ("time", time[:, None])):
            bad = np.flatnonzero(~np.all(np.isfinite(array), axis=1))
            if len(bad):
                raise ValueError(f"{name} has NaN/inf in row(s) {bad[:10].tolist()} of this append; nothing was added")
        self._write(self._size, {"obs": obs, "act": act, "next_obs": next_obs, "episode": episode, "time": time})

    def _write(self, start: int, arrays: dict[str, np.ndarray]) -> None:
        """Store ``arrays`` (already checked) at rows ``start:``, growing the buffers."""
        end = start + len(arrays["obs"])
        capacity = len(self._buffers["obs"])
        if end > capacity:
            grown = self._allocate(max(end, 2 * capacity))
            for name, buffer in grown.items():
                buffer[:start] = self._buffers[name][:start]
            self._buffers = grown
        for name, values in arrays.items():
            self._buffers[name][start:end] = values
        self._size = end
        ids, counts = np.unique(arrays["episode"], return_counts=True)
        for episode, count in zip(ids.tolist(), counts.tolist()):
            self._steps[episode] = self._steps.get(episode, 0) + count

    def action_history(self, length: int) -> np.ndarray:
        """The ``length`` actions taken before each transition's, oldest first, [N, length,
        act_dim]: the preceding transitions of the same episode (in time order), zeros
        before the episode's first step and across a gap (a transition whose ``obs`` is not
        the previous one's ``next_obs``: something in between was not recorded)."""
        N = len(self)
        past = np.zeros((N, length, self.act_dim))
        if length == 0 or N == 0:
            return past
        order = np.lexsort((self.time, self.episode))  # rows by episode, then time
        obs, next_obs, episode = self.obs[order], self.next_obs[order], self.episode[order]
        follows = np.zeros(N, dtype=bool)  # row k continues row k-1 of the same episode
        follows[1:] = (episode[1:] == episode[:-1]) & np.all(obs[1:] == next_obs[:-1], axis=1)
        run_start = np.maximum.accumulate(np.where(follows, 0, np.arange(N)))
        steps_in = np.arange(N) - run_start  # how many contiguous predecessors each row has
        back = np.arange(length, 0, -1)  # oldest first: length, …, 1 steps back
        source = np.arange(N)[:, None] - back[None, :]
        known = steps_in[:, None] >= back[None, :]
        act = self.act[order]
        past[order] = np.where(known[..., None], act[np.clip(source, 0, None)], 0.0)
        return past

    @classmethod
    def concatenate(cls, parts: "list[TransitionDataset]") -> "TransitionDataset":
        """One dataset of ``parts`` (several arms' recordings), in order; each part's
        episode ids are shifted past the previous parts', so episodes of different parts
        never share an id (action histories and validation splits stay within one)."""
        if not parts:
            raise ValueError("nothing to concatenate")
        union, offset = cls(parts[0].obs_dim, parts[0].act_dim), 0
        for part in parts:
            if len(part):
                union.append(part.obs, part.act, part.next_obs, part.episode - part.episode.min() + offset, part.time)
                offset = int(union.episode.max()) + 1
        return union

    def subset(self, index: np.ndarray) -> "TransitionDataset":
        """The transitions at ``index`` (an index or boolean mask array), copied."""
        part = TransitionDataset(self.obs_dim, self.act_dim)
        part._write(0, {name: getattr(self, name)[index] for name in FIELDS})
        return part

    def split(self, val_fraction: float, rng: np.random.Generator) -> tuple["TransitionDataset", "TransitionDataset"]:
        """Random train/validation split by episode (no episode on both sides).

        With a single episode there is nothing to split by, so its last ``val_fraction``
        of steps (in time) is the validation part. ``val_fraction = 0`` gives an empty
        validation set.

        Raises:
            ValueError: the dataset is empty, or ``val_fraction`` is outside [0, 1).
        """
        self._check_split(val_fraction)
        episodes = self.episodes
        if val_fraction == 0.0:
            val_mask = np.zeros(len(self), dtype=bool)
        elif len(episodes) == 1:
            val_mask = self.time >= np.quantile(self.time, 1.0 - val_fraction)
        else:
            n_val = min(max(1, round(val_fraction * len(episodes))), len(episodes) - 1)
            val_mask = np.isin(self.episode, rng.choice(episodes, size=n_val, replace=False))
        return self.subset(~val_mask), self.subset(val_mask)

    def _check_split(self, val_fraction: float) -> None:
        if len(self) == 0:
            raise ValueError("the dataset is empty: collect transitions before fitting")
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"val_fraction = {val_fraction}: must be in [0, 1)")

    def validation_rows(self, val_fraction: float, rng: np.random.Generator) -> np.ndarray:
        """A random ``val_fraction`` of the transitions (at least one stays for training), as
        a bool mask [N]: the validation part comes from the same states as the training part
        (for early stopping, where a held-out episode from another part of the state space
        would stop training at once)."""
        self._check_split(val_fraction)
        val_mask = np.zeros(len(self), dtype=bool)
        val_mask[rng.choice(len(self), size=min(round(val_fraction * len(self)), len(self) - 1), replace=False)] = True
        return val_mask

    def split_rows(self, val_fraction: float, rng: np.random.Generator) -> tuple["TransitionDataset", "TransitionDataset"]:
        """Training and validation datasets of :meth:`validation_rows`."""
        val_mask = self.validation_rows(val_fraction, rng)
        return self.subset(~val_mask), self.subset(val_mask)

    def save(self, path: str | Path) -> Path:
        """Write an ``.npz`` atomically (write then rename)."""

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as f:
                self._write_npz(f)

        return atomic_write(path, write)

    def to_bytes(self) -> bytes:
        """The ``.npz`` file's bytes, for a message (``/mbrl/episodes``)."""
        buffer = io.BytesIO()
        self._write_npz(buffer)
        return buffer.getvalue()

    def _write_npz(self, f: BinaryIO) -> None:
        meta = np.array([FORMAT, str(self.obs_dim), str(self.act_dim)])
        np.savez(f, format=meta, **{name: getattr(self, name) for name in FIELDS})

    @classmethod
    def resume(cls, path: str | Path, obs_dim: int, act_dim: int) -> "TransitionDataset":
        """The dataset saved at ``path`` to append to, or a new one where there is none.

        Raises:
            CheckpointError: the file is unreadable or holds another system's dims.
        """
        if not Path(path).exists():
            return cls(obs_dim, act_dim)
        dataset = cls.load(path)
        if (dataset.obs_dim, dataset.act_dim) != (obs_dim, act_dim):
            raise CheckpointError(f"{path}: a dataset of obs_dim={dataset.obs_dim}, act_dim={dataset.act_dim}, "
                                  f"not this system's ({obs_dim}, {act_dim}); move it away to start anew")
        return dataset

    @classmethod
    def load(cls, source: str | Path | bytes) -> "TransitionDataset":
        """Read a file written by :meth:`save`, or the bytes of :meth:`to_bytes`.

        Raises:
            CheckpointError: missing, truncated or foreign file, or inconsistent arrays.
        """
        name = source_name(source)
        stream = io.BytesIO(bytes(source)) if isinstance(source, (bytes, bytearray, memoryview)) else Path(source)
        try:
            with np.load(stream, allow_pickle=False) as npz:
                meta = npz["format"]
                if str(meta[0]) != FORMAT:
                    raise CheckpointError(f"{name}: not a transition dataset (format {meta[0]!r})")
                dataset = cls(int(meta[1]), int(meta[2]))
                arrays = {field: npz[field] for field in FIELDS}
        except CheckpointError:
            raise
        except Exception as err:
            raise CheckpointError(f"{name}: unreadable transition dataset (truncated or corrupt?): {err}") from None
        try:
            dataset.append(arrays["obs"], arrays["act"], arrays["next_obs"], arrays["episode"], arrays["time"])
        except ValueError as err:
            raise CheckpointError(f"{name}: inconsistent transition dataset: {err}") from None
        return dataset
