"""The thin ROS 2 layer: node, message codecs, markers, diagnostics, bag tools."""
