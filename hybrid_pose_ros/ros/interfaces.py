"""
The event message definitions (dvs_msgs, event_camera_msgs), kept once in ``ros/msg/``.

The same files build the interface packages on machines without ROS (``test/interfaces`` links
to them) and register the types with rosbags for reading and writing bags.
"""
import pathlib

from rosbags.typesys import get_types_from_msg, get_typestore, Stores
from rosbags.typesys.store import Typestore

MSG_DIR = pathlib.Path(__file__).resolve().parent / 'msg'
EVENT_ARRAY = 'dvs_msgs/msg/EventArray'
EVENT_PACKET = 'event_camera_msgs/msg/EventPacket'
EVENT_MESSAGE_TYPES = ('dvs_msgs/msg/Event', EVENT_ARRAY, EVENT_PACKET)
INPUT_TYPE_MESSAGES = {'event_packet': EVENT_PACKET, 'dvs': EVENT_ARRAY}
"""The node's ``input_type`` values and the message type each subscribes to."""
DEFAULT_INPUT_TYPE = 'event_packet'
"""The node's default ``input_type``; ``hybrid_pose_convert aedat4`` writes it by default."""


def message_definition(type_name: str) -> str:
    """Return the .msg text of ``pkg/msg/Name`` for one of :data:`EVENT_MESSAGE_TYPES`."""
    package, _, name = type_name.split('/')
    return (MSG_DIR / f'{package}__{name}.msg').read_text()


def event_typestore() -> Typestore:
    """Return a rosbags typestore (Kilted) with the event message types registered."""
    typestore = get_typestore(Stores.ROS2_KILTED)
    types = {}
    for type_name in EVENT_MESSAGE_TYPES:
        types.update(get_types_from_msg(message_definition(type_name), type_name))
    typestore.register(types)
    return typestore
