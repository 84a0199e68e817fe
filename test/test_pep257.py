# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""Docstring check: the ament_pep257 configuration `colcon test` runs on a ROS machine."""
from ament_pep257.main import main
import pytest

LINTED_PATHS = ['hybrid_pose_ros', 'launch', 'test', 'setup.py']


@pytest.mark.linter
@pytest.mark.pep257
def test_pep257():
    rc = main(argv=LINTED_PATHS)
    assert rc == 0, 'Found code style errors / warnings'
