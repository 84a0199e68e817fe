"""Run a node until shutdown: the spin loop both nodes share."""
import gc

from hybrid_pose_ros.ros.compat import ExternalShutdownException
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.node import Node


def spin_until_shutdown(node: Node) -> None:
    """
    Spin ``node`` on a single-threaded executor; on Ctrl-C or SIGTERM destroy it cleanly.

    The objects of the startup (torch, rclpy, the model: about 200,000) are frozen out of the
    garbage collector first: a full collection over them took 90 ms here, a stall that would
    otherwise hit whichever bins are in flight when Python decides to run one.
    """
    gc.collect()
    gc.freeze()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except _rclpy.RCLError:
        if rclpy.ok():
            raise   # a shutdown (SIGTERM) racing the executor's wait is not an error
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
