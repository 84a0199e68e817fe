"""Multi-view geometry helpers (triangulation); numpy only, no ROS imports."""
