# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""Helpers shared by the tests: paths and small child-process programs."""
import pathlib

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
