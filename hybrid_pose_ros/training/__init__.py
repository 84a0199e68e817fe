"""Training and evaluation of the hybrid ANN-SNN, the ANN and the pure-SNN baseline (no ROS)."""
