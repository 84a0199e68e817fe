"""The sample bag installed with the package: where it is and its event topic (light imports)."""
import pathlib

SAMPLE_EVENTS_TOPIC = '/cam3/events'
"""The bag's event topic (dvs_msgs/EventArray, camera 3); ``/cam3/pose_gt`` holds its labels."""


def sample_bag() -> pathlib.Path:
    """Return the bundled sample bag: the source tree's ``bags/``, else the installed share."""
    source = pathlib.Path(__file__).resolve().parents[1] / 'bags' / 'sample_bag'
    if source.exists():
        return source
    from ament_index_python.packages import get_package_share_directory
    return pathlib.Path(get_package_share_directory('hybrid_pose_ros')) / 'data' / 'sample_bag'
