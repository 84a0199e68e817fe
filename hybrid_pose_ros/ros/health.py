"""
What the node says about its own health: recent rates and why no input arrives.

No rclpy here: the node passes in what it read from the ROS graph, so every text can be tested
exactly.
"""
from collections import deque
from dataclasses import dataclass

from hybrid_pose_ros.ros.interfaces import INPUT_TYPE_MESSAGES

RATE_WINDOW_S = 5.0
"""Seconds over which ``pose_rate_hz`` and ``event_rate_mev_s`` are measured."""


class RateWindow:
    """
    The rate of a growing counter over the last ``span_s`` seconds (or since the first sample).

    Each :meth:`rate` call adds a sample; the rate is the counter's growth since the oldest
    sample at most ``span_s`` old (kept as the reference), divided by the time between them.
    """

    def __init__(self, span_s: float = RATE_WINDOW_S) -> None:
        self.span_s = span_s
        self.samples: deque[tuple[float, int]] = deque()

    def rate(self, now: float, count: int) -> float:
        """Add the sample ``(now, count)`` and return the counter's rate per second."""
        self.samples.append((now, count))
        while len(self.samples) > 2 and now - self.samples[1][0] >= self.span_s:
            self.samples.popleft()
        then, start = self.samples[0]
        return (count - start) / (now - then) if now > then else 0.0

    def reset(self) -> None:
        """Forget the samples (the node was deactivated)."""
        self.samples.clear()


@dataclass(frozen=True)
class Endpoint:
    """A publisher seen in the ROS graph: its message type and whether it is best effort."""

    topic_type: str
    best_effort: bool = False


def _ros_type(type_name: str) -> str:
    """Return ``pkg/msg/Name`` for rclpy's ``pkg/msg/Name`` (unchanged) or ``pkg/Name``."""
    package, _, name = type_name.rpartition('/')
    return type_name if package.endswith('/msg') else f'{package}/msg/{name}'


def no_input_problem(topic: str, input_type: str, waited_s: float, reliable: bool,
                     publishers: list[Endpoint], event_topics: dict[str, list[str]]) -> str:
    """
    Return the warning for a node that has had no message on ``topic`` for ``waited_s``.

    ``publishers`` are the publishers on ``topic``; ``event_topics`` every other topic with an
    event message type (topic -> types), to suggest where the events might be.
    """
    expected = INPUT_TYPE_MESSAGES[input_type]
    head = (f'no message on {topic} in {waited_s:.1f} s since the node started listening '
            f'(it reads {expected}, input_type {input_type})')
    other = sorted({_ros_type(p.topic_type) for p in publishers} - {expected})
    if other:
        by_message = {message: name for name, message in INPUT_TYPE_MESSAGES.items()}
        hints = [f'set input_type {by_message[t]}' if t in by_message else
                 f'the node cannot read {t}' for t in other]
        return f'{head}: its publisher sends {", ".join(other)}; {"; ".join(hints)}'
    if publishers:
        if reliable and any(p.best_effort for p in publishers):
            return (f'{head}: its publisher is best effort and the subscription reliable, '
                    'which do not connect; set qos_reliability best_effort')
        return (f'{head}: {len(publishers)} publisher(s) of {expected} on it have sent '
                'nothing yet')
    elsewhere = ', '.join(f'{name} ({", ".join(_ros_type(t) for t in types)})'
                          for name, types in sorted(event_topics.items()) if name != topic)
    hint = (f'; event topics in the graph: {elsewhere}; remap events:=TOPIC or set '
            'events_topic' if elsewhere else '')
    return f'{head}: nothing publishes {topic}{hint}'


def event_topics(names_and_types: list[tuple[str, list[str]]]) -> dict[str, list[str]]:
    """Return the topics of ``get_topic_names_and_types()`` that carry an event message type."""
    known = set(INPUT_TYPE_MESSAGES.values())
    return {name: types for name, types in names_and_types
            if any(_ros_type(t) in known for t in types)}
