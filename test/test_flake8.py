# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""Style check: the ament_flake8 configuration `colcon test` runs on a ROS machine."""
from ament_flake8.main import main_with_errors
import pytest

LINTED_PATHS = ['hybrid_pose_ros', 'launch', 'test', 'setup.py']


@pytest.mark.flake8
@pytest.mark.linter
def test_flake8():
    rc, errors = main_with_errors(argv=LINTED_PATHS)
    assert rc == 0, 'Found %d code style errors / warnings:\n' % len(errors) + '\n'.join(errors)
