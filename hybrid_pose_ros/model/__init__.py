"""The hybrid ANN-SNN networks, presets, checkpoints and energy accounting (no ROS imports)."""
