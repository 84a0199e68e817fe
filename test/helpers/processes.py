# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""Start the package's nodes as separate processes for the multi-process tests."""
import subprocess
import sys


def ros_command(module: str, *params: str) -> list[str]:
    """Return the command running ``python -m module`` with ``-p`` parameter overrides."""
    args = [sys.executable, '-m', module, '--ros-args']
    for param in params:
        args += ['-p', param]
    return args


def start_process(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    """Start ``args`` with ``env``; stdout and stderr are captured together as text."""
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
