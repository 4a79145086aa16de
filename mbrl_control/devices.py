"""Where torch work runs: ``cpu``, ``cuda`` or ``auto`` (CUDA where there is a GPU).

A model fitted on a GPU is moved back to the CPU before it is saved or published, so a
planner on a computer without one loads every checkpoint.
"""

from __future__ import annotations

import torch

from mbrl_control.config import ConfigError

DEVICES = ("cpu", "cuda", "auto")


def resolve_device(name: str) -> tuple[torch.device, str]:
    """The device ``name`` (one of :data:`DEVICES`) means here, and a note to log once when
    ``auto`` falls back to the CPU ('' otherwise).

    Raises:
        ConfigError: ``cuda`` where torch sees no CUDA device.
    """
    if name == "cpu":
        return torch.device("cpu"), ""
    available = torch.cuda.is_available()
    if name == "cuda":
        if not available:
            raise ConfigError(f"device = 'cuda': torch {torch.__version__} sees no CUDA device here "
                              f"({'a CPU-only build' if torch.version.cuda is None else 'no GPU or driver'}); use cpu or auto")
        return torch.device("cuda"), ""
    if name == "auto":
        return (torch.device("cuda"), "") if available else (torch.device("cpu"), "device auto: no CUDA device here, so on the CPU")
    raise ConfigError(f"device = {name!r}: choose one of {', '.join(DEVICES)}")
