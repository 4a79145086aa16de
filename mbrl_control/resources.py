"""Locate the package's installed data files (urdf/, config/, launch/).

The same files serve a source checkout (``pip install -e .``), a pip install
(``<prefix>/share/mbrl_control``) and a colcon build on a ROS 2 install (the ament index).
"""

from __future__ import annotations

import sys
from pathlib import Path

PACKAGE = "mbrl_control"


def share_dir() -> Path:
    """The folder holding ``urdf/``, ``config/`` and ``launch/``.

    Raises:
        FileNotFoundError: when no installed or source copy can be found.
    """
    candidates = [Path(__file__).resolve().parent.parent, Path(sys.prefix) / "share" / PACKAGE]
    try:  # a colcon / ament install
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory(PACKAGE)))
    except (ImportError, LookupError, OSError):  # no ament index, or not registered in it
        pass
    for candidate in candidates:
        if (candidate / "urdf").is_dir():
            return candidate
    raise FileNotFoundError(
        f"cannot find the {PACKAGE} data files (urdf/); looked in: "
        + ", ".join(str(c) for c in candidates)
    )


def default_urdf() -> Path:
    """Path of the packaged arm description, ``urdf/so_arm5.urdf``."""
    return share_dir() / "urdf" / "so_arm5.urdf"
