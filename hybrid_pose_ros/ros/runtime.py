"""Run a node until shutdown: the spin loop both nodes share."""
import gc

from hybrid_pose_ros.ros.compat import ExternalShutdownException
from hybrid_pose_ros.tools.node import interrupt_normally
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.node import Node


def spin_until_shutdown(node: Node) -> None:
    """
    Spin ``node`` on a single-threaded executor; on Ctrl-C or SIGTERM destroy it cleanly.

    Ctrl-C raises KeyboardInterrupt from here on (start-up may have made it exit at once, see
    :mod:`hybrid_pose_ros.tools.node`). The objects of the startup (torch, rclpy, the model:
    about 200,000) are frozen out of the garbage collector first: a full collection over them
    took 90 ms here, a stall that would otherwise hit whichever bins are in flight when Python
    decides to run one.
    """
    executor = SingleThreadedExecutor()
    try:
        interrupt_normally()
        gc.collect()
        gc.freeze()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except _rclpy.RCLError:
        if rclpy.ok():
            raise   # a shutdown (SIGTERM) racing the executor's wait is not an error
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
