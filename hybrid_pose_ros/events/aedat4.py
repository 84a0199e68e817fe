"""AEDAT4 recordings (iniVation DV) as event arrays, read with the ``aedat`` package."""
from hybrid_pose_ros.events.event_array import EVENT_DTYPE
import numpy as np


def read_aedat4_events(path: str) -> tuple[np.ndarray, int, int]:
    """
    Read the first event stream of an AEDAT4 file with ``aedat``.

    Return the events (:data:`EVENT_DTYPE`, t in microseconds since the epoch, stably sorted by
    time if the file is not) and the stream's sensor width and height. Raises ``ImportError``
    when ``aedat`` is missing and ``ValueError`` when the file has no event stream.
    """
    try:
        import aedat
    except ImportError as error:
        raise ImportError('reading AEDAT4 needs the aedat package: pip install aedat==2.3.0'
                          ) from error
    decoder = aedat.Decoder(path)
    streams = {i: s for i, s in decoder.id_to_stream().items() if s['type'] == 'events'}
    if not streams:
        raise ValueError(f'{path} has no event stream')
    stream_id = min(streams)
    parts = []
    for packet in decoder:
        if packet['stream_id'] == stream_id and 'events' in packet:
            raw = packet['events']
            part = np.empty(len(raw), dtype=EVENT_DTYPE)
            part['t'], part['x'], part['y'], part['p'] = raw['t'], raw['x'], raw['y'], raw['on']
            parts.append(part)
    events = np.concatenate(parts) if parts else np.empty(0, dtype=EVENT_DTYPE)
    if len(events) > 1 and np.any(np.diff(events['t']) < 0):
        events = events[np.argsort(events['t'], kind='stable')]
    return events, streams[stream_id]['width'], streams[stream_id]['height']
