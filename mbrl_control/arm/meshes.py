"""Find the mesh files a URDF names, as ROS tools find them.

A URDF names its meshes by a path relative to the file (``assets/part.stl``), an absolute
path or ``file://`` URI, or ``package://pkg/meshes/part.stl``: a file inside the ROS
package ``pkg``. A package is looked up, in order, in the ament index (a sourced ROS 2
install or colcon workspace), in the folders of ``ROS_PACKAGE_PATH`` and of
``AMENT_PREFIX_PATH``'s ``share/``, and in the folders around the URDF (a description
package checked out as it is published: ``pkg/urdf/arm.urdf`` next to ``pkg/meshes/``).
"""

from __future__ import annotations

import os
from pathlib import Path

MESH_FORMATS = (".stl", ".obj", ".msh")  # what MuJoCo reads


class MeshError(ValueError):
    """A mesh the URDF names cannot be found or read."""


def package_roots(package: str, near: Path) -> list[Path]:
    """The folders that may hold ROS package ``package``, most authoritative first."""
    roots = []
    try:
        from ament_index_python.packages import get_package_share_directory

        roots.append(Path(get_package_share_directory(package)))
    except (ImportError, LookupError, ValueError, OSError):
        pass
    search = [Path(f) for f in os.environ.get("ROS_PACKAGE_PATH", "").split(os.pathsep) if f]
    search += [Path(f) / "share" for f in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if f]
    for folder in search + [near, *near.parents]:
        roots.append(folder if folder.name == package else folder / package)
    return roots


def resolve_mesh(filename: str, urdf: Path) -> Path:
    """The file that mesh ``filename`` of the URDF at ``urdf`` names.

    Raises:
        MeshError: the file cannot be found (saying where it was looked for), or MuJoCo
            cannot read its format.
    """
    urdf_dir = urdf.resolve().parent
    if filename.startswith("package://"):
        package, _, rest = filename[len("package://") :].partition("/")
        candidates = [root / rest for root in package_roots(package, urdf_dir)]
    elif filename.startswith("file://"):
        candidates = [Path(filename[len("file://") :])]
    else:
        candidates = [urdf_dir / filename]
    found = next((c for c in candidates if c.is_file()), None)
    if found is None:
        looked = ", ".join(str(c) for c in dict.fromkeys(candidates))
        hint = " (set ROS_PACKAGE_PATH to the folder holding the package, or source its workspace)" if filename.startswith("package://") else ""
        raise MeshError(f"{urdf}: mesh {filename!r} not found; looked in {looked}{hint}")
    if found.suffix.lower() not in MESH_FORMATS:
        raise MeshError(f"{urdf}: mesh {filename!r} is {found.suffix or 'of no known format'}; MuJoCo reads {', '.join(MESH_FORMATS)} (convert it, e.g. with trimesh)")
    return found.resolve()
