"""
The rclpy features that differ between the supported distributions, detected once.

Humble (rclpy 3.3), Jazzy (7.1) and Kilted (9.x) are supported. Only Kilted has
``rclpy.subscription.MessageInfo``; Jazzy and Kilted pass the message info (publisher GID and
sequence number) to a subscription callback that takes two arguments, Humble never does.
:func:`subscribe` gives the node's callback the info where rclpy provides it and ``None``
elsewhere, so the same code runs on all three.
"""
from typing import Any, Callable, Mapping

from rclpy.subscription import Subscription

try:
    from rclpy.executors import ExternalShutdownException
except ImportError:   # an rclpy without it never raises it
    class ExternalShutdownException(Exception):  # noqa: N818 - rclpy's name
        """Stand-in for rclpy's exception on an rclpy that does not define it."""

MessageInfo = Mapping[str, Any]
"""What rclpy passes as message info: ``publisher_gid``, ``publication_sequence_number``..."""

MESSAGE_INFO_IN_CALLBACKS = hasattr(Subscription, 'CallbackType')
"""Whether this rclpy passes message info to two-argument callbacks (Jazzy on, not Humble)."""


def message_callback(on_message: Callable[[Any, MessageInfo | None], None],
                     with_info: bool | None = None) -> Callable[..., None]:
    """
    Return the callback to register for ``on_message(msg, info)``.

    With message info (``with_info``, default: where this rclpy passes it) the callback takes
    two arguments; without, one, and ``on_message`` gets ``None`` as the info.
    """
    if MESSAGE_INFO_IN_CALLBACKS if with_info is None else with_info:
        def with_message_info(msg: Any, info: MessageInfo) -> None:
            on_message(msg, info)
        return with_message_info

    def message_only(msg: Any) -> None:
        on_message(msg, None)
    return message_only
