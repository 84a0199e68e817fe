"""
The node's diagnostics counters that mean lost input or failed work, in one place.

``hybrid_pose_node`` turns ``/diagnostics`` WARN when a drop counter grows and ERROR when an
error counter grows; the soak and the demo report the same counters. Plain names only, so a
tool can import them without loading the model or rclpy.
"""

DROP_COUNTERS = ('decode_errors', 'messages_lost', 'size_dropped', 'events_out_of_sensor',
                 'events_time_outliers', 'bins_dropped', 'nonfinite_joints',
                 'binner_late_dropped', 'binner_reset_dropped', 'binner_overflow_dropped')
"""Counters of input the node dropped (a grown one makes the status WARN)."""
ERROR_COUNTERS = ('step_errors', 'message_errors')
"""Counters of failed work (a grown one makes the status ERROR)."""
