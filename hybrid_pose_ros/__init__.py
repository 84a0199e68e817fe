"""Hybrid ANN-SNN event-camera human pose estimation for ROS 2."""
