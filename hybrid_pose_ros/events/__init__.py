"""Event arrays, binning, input representations and sensor geometry (no ROS imports)."""
