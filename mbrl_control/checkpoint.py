"""Crash-safe files: write to a temporary file beside the target, then rename.

A reader never sees a half-written file, and a crash mid-write leaves the previous file
in place. Readers get one error naming the file and the problem.
"""

from __future__ import annotations

import io
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch


class CheckpointError(ValueError):
    """A file could not be read as what it claims to be; the message names the file."""


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` to produce the file at a temporary path, fsync it, and rename
    it onto ``path``. On any error the temporary file is removed and ``path`` is
    untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_text(path: str | Path, text: str) -> Path:
    """Atomically write a text file."""
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def save_torch(payload: dict[str, Any], path: str | Path) -> Path:
    """Atomically ``torch.save`` a dict of tensors and plain values."""
    return atomic_write(path, lambda tmp: torch.save(payload, tmp))


def source_name(source: str | Path | bytes) -> str:
    """How errors name a checkpoint: its path, or where serialized bytes came from."""
    return "serialized checkpoint" if isinstance(source, (bytes, bytearray, memoryview)) else str(source)


def load_torch(source: str | Path | bytes, kind: str) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_torch` (a file, or its bytes as a message
    carried them) whose ``kind`` starts with ``kind``.

    Only tensors and plain Python values are unpickled (``weights_only=True``).

    Raises:
        CheckpointError: missing, truncated or corrupt file, or not a ``kind`` checkpoint.
    """
    name = source_name(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        stream: Any = io.BytesIO(bytes(source))
    else:
        stream = Path(source)
        if not stream.is_file():
            raise CheckpointError(f"{name}: no such checkpoint file")
    try:
        payload = torch.load(stream, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for truncated or foreign files
        # torch's own text runs to a page of advice on weights_only; its first line says what failed
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if isinstance(err, pickle.UnpicklingError):
            reason = "not a torch checkpoint of tensors and plain values"
        raise CheckpointError(f"{name}: unreadable checkpoint (truncated or corrupt?): {reason}") from None
    if not isinstance(payload, dict) or not str(payload.get("kind", "")).startswith(kind):
        found = payload.get("kind") if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(f"{name}: not a {kind} checkpoint (found {found!r})")
    return payload
