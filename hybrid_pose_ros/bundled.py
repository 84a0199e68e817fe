"""Files installed with the package (weights): where they are, with light imports."""
import pathlib


def bundled_file(relative: str | pathlib.PurePath) -> pathlib.Path | None:
    """
    Return the bundled file ``relative`` (e.g. ``weights/hybrid_cpu.pt``), or None.

    The installed share folder comes first, then the source tree.
    """
    candidates = []
    try:
        from ament_index_python.packages import get_package_share_directory
        candidates.append(pathlib.Path(get_package_share_directory('hybrid_pose_ros')))
    except (ImportError, LookupError, ValueError, OSError):
        pass
    candidates.append(pathlib.Path(__file__).resolve().parents[1])
    for root in candidates:
        if (root / relative).exists():
            return root / relative
    return None
