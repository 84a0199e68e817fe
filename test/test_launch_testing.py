# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""
The launch_testing test ``launch_tests/hybrid_poses.py``, run by launch_testing's runner.

launch_testing's pytest plugin does not load under pytest 8+ (pytest.ini blocks it), so the test
runs through ``launch_test`` and its JUnit report is checked: both test cases ran and passed.
Skipped where launch_testing is absent (``make ros-tools`` installs it from
``../shared/vendor/ros2``).
"""
import pathlib
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

from helpers import REPO_ROOT
import pytest

pytestmark = pytest.mark.ros
LAUNCH_TEST = REPO_ROOT / 'test' / 'launch_tests' / 'hybrid_poses.py'
BAG = REPO_ROOT / 'bags' / 'sample_bag'


def launch_test_command() -> str | None:
    """Return launch_testing's ``launch_test`` of this environment, else the one on PATH."""
    beside = pathlib.Path(sys.executable).parent / 'launch_test'
    return str(beside) if beside.exists() else shutil.which('launch_test')


@pytest.mark.skipif(not BAG.exists(), reason='sample bag not present')
def test_launch_testing_runs_both_test_cases_and_they_pass(ros_env, tmp_path):
    pytest.importorskip('launch_testing_ros', reason='launch_testing is not installed: make '
                        'ros-tools (needs ../shared/vendor/ros2) or a ROS 2 installation')
    if launch_test_command() is None:
        pytest.skip('the launch_test command is not installed: make ros-tools')
    report = tmp_path / 'launch_test.xml'
    result = subprocess.run([launch_test_command(), str(LAUNCH_TEST), '--junit-xml',
                             str(report)], env=ros_env, capture_output=True, text=True,
                            timeout=280)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    cases = {case.get('name'): case for case in ElementTree.parse(report).iter('testcase')}
    assert set(cases) == {'test_poses_arrive_with_13_joints',
                          'test_every_process_exited_cleanly'}, output
    assert all(len(case) == 0 for case in cases.values()), output   # no failure, no skip
