"""The open rate of streams per visitor: token buckets, bounded."""

from __future__ import annotations

import pytest

from reactive_blocks.consumers import ReactiveStreamConsumer
from reactive_blocks.streams.throttle import OpenThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_passes_then_opens_wait_for_the_rate():
    clock = Clock()
    throttle = OpenThrottle(rate=2.0, burst=3, clock=clock)
    assert [throttle.allow("address:1.2.3.4") for _ in range(4)] == [0, 0, 0, 1]
    clock.now += 0.5  # one open's worth came back
    assert throttle.allow("address:1.2.3.4") == 0
    assert throttle.allow("address:1.2.3.4") == 1
    # Another visitor has a bucket of its own.
    assert throttle.allow("session:abc") == 0


def test_the_wait_is_whole_seconds_and_at_least_one():
    clock = Clock()
    throttle = OpenThrottle(rate=0.1, burst=1, clock=clock)
    assert throttle.allow("k") == 0
    assert throttle.allow("k") == 10


def test_a_bucket_never_holds_more_than_the_burst():
    clock = Clock()
    throttle = OpenThrottle(rate=100.0, burst=2, clock=clock)
    throttle.allow("k")
    clock.now += 3600
    assert [throttle.allow("k") for _ in range(3)] == [0, 0, 1]


def test_the_table_keeps_the_most_recent_visitors_only():
    throttle = OpenThrottle(rate=1.0, burst=1, remembered=100, clock=Clock())
    for number in range(1000):
        throttle.allow(f"address:{number}")
    assert len(throttle) == 100
    assert throttle.allow("address:999") == 1  # still remembered: it waits
    assert throttle.allow("address:0") == 0  # forgotten: a full bucket again


def test_a_key_shared_by_many_visitors_gets_a_scaled_bucket():
    clock = Clock()
    throttle = OpenThrottle(rate=1.0, burst=2, clock=clock)
    assert [throttle.allow("address:10.0.0.1", 10) for _ in range(21)][-2:] == [0, 1]
    clock.now += 0.15  # ten times the rate: one more already
    assert throttle.allow("address:10.0.0.1", 10) == 0


@pytest.mark.parametrize(
    ("client", "key"),
    [
        (("192.0.2.7", 5000), "address:192.0.2.7"),
        (("2001:db8::1", 5000), "address:2001:db8::/64"),
        (("2001:db8::ffff:1", 5000), "address:2001:db8::/64"),  # the same host
        (("unix-socket", 0), "address:unix-socket"),
        (None, None),
    ],
)
def test_the_address_key_of_a_client(client, key):
    consumer = ReactiveStreamConsumer()
    consumer.scope = {"type": "http", "client": client}
    assert consumer._address() == key
