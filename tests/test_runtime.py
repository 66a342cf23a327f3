from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from reactive_blocks import (
    ChangeEvent,
    CloseReason,
    DependencyIndex,
    ReactiveBus,
    get_bus,
    get_index,
)
from reactive_blocks.runtime import reset


class TinyBus(ReactiveBus):
    pass


def test_get_bus_returns_one_configured_instance():
    bus = get_bus()
    assert type(bus) is ReactiveBus
    assert bus.maxsize == 256
    assert get_bus() is bus


def test_get_index_returns_one_instance():
    index = get_index()
    assert isinstance(index, DependencyIndex)
    assert get_index() is index


def test_override_settings_builds_a_new_bus_and_closes_the_old():
    before = get_bus()
    sub = before.subscribe("doc-1")
    with override_settings(
        REACTIVE_BLOCKS={
            "BUS": {"BACKEND": "tests.test_runtime.TinyBus", "OPTIONS": {"maxsize": 3}}
        }
    ):
        during = get_bus()
        assert type(during) is TinyBus
        assert during.maxsize == 3
    assert sub.close_reason is CloseReason.BUS_CLOSED
    after = get_bus()
    assert after is not during
    assert type(after) is ReactiveBus


def test_reset_forgets_bus_and_index():
    bus, index = get_bus(), get_index()
    bus.emit_sync(ChangeEvent("doc-1", {"a"}))
    reset()
    assert get_bus() is not bus
    assert get_bus().emitted_count == 0
    assert get_index() is not index


@pytest.mark.parametrize(
    ("bus", "message"),
    [
        (
            {"BACKEND": "reactive_blocks.nope.Bus"},
            "'reactive_blocks.nope.Bus' cannot be imported",
        ),
        (
            {"BACKEND": "reactive_blocks.DependencyIndex"},
            "is not a ReactiveBus subclass",
        ),
        (
            {"BACKEND": "reactive_blocks.ReactiveBus", "OPTIONS": {"size": 3}},
            "\\{'size': 3\\} do not suit reactive_blocks.ReactiveBus: .*unexpected keyword",
        ),
        (
            {"BACKEND": "reactive_blocks.ReactiveBus", "OPTIONS": {"maxsize": 0}},
            "maxsize must be at least 1",
        ),
    ],
)
def test_bad_bus_configuration_is_explained(bus, message):
    with (
        override_settings(REACTIVE_BLOCKS={"BUS": bus}),
        pytest.raises(ImproperlyConfigured, match=message),
    ):
        get_bus()


def test_index_builders_run_after_every_build():
    with override_settings(
        REACTIVE_BLOCKS={"INDEX_BUILDERS": ["tests.live_builders.register"]}
    ):
        assert get_index().derivations() == {
            "doc.word_count": frozenset({"doc.content"})
        }
        reset()
        assert get_index().derivations() == {
            "doc.word_count": frozenset({"doc.content"})
        }


@pytest.mark.parametrize(
    ("builder", "message"),
    [
        (
            "tests.live_builders.nope",
            "'tests.live_builders.nope', which cannot be imported",
        ),
        (
            "tests.live_builders.NOT_CALLABLE",
            "which is not a function taking the index",
        ),
    ],
)
def test_bad_index_builders_are_explained(builder, message):
    with (
        override_settings(REACTIVE_BLOCKS={"INDEX_BUILDERS": [builder]}),
        pytest.raises(ImproperlyConfigured, match=message),
    ):
        get_index()


def test_design_names_the_routing_module_urls_and_the_consumer_module_consumers():
    from reactive_blocks import consumers, urls
    from reactive_blocks.streams import consumer, routing

    assert urls.stream_path is routing.stream_path
    assert urls.stream_router is routing.stream_router
    assert consumers.ReactiveStreamConsumer is consumer.ReactiveStreamConsumer


async def test_the_redis_bus_is_selected_by_settings_and_delivers(
    redis_server, redis_prefix
):
    from reactive_blocks import RedisBus

    options = {"url": redis_server.url, "prefix": redis_prefix, "maxsize": 16}
    with override_settings(
        REACTIVE_BLOCKS={
            "BUS": {"BACKEND": "reactive_blocks.RedisBus", "OPTIONS": options}
        }
    ):
        bus = get_bus()
        assert isinstance(bus, RedisBus)
        assert bus.maxsize == 16
        sub = bus.subscribe("doc-1")
        assert await sub.ready()
        bus.emit_sync(ChangeEvent("doc-1", {"doc.title"}))
        batch = await sub.next_batch(timeout=5)
        assert batch is not None
        assert batch.events == (ChangeEvent("doc-1", {"doc.title"}),)
    assert sub.close_reason is CloseReason.BUS_CLOSED  # and its thread stopped
    assert bus._link._loop is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"url": "redis://x", "no_such_option": 1}, "not accepted by redis-py"),
        ({"url": ""}, "url must be a non-empty string"),
        ({"url": "redis://x", "outbox_size": 0}, "outbox_size must be a positive int"),
        ({"sentinels": [("h", 1)]}, "sentinels and master_name go together"),
    ],
)
def test_bad_redis_options_are_improperly_configured(options, message):
    with (
        override_settings(
            REACTIVE_BLOCKS={
                "BUS": {"BACKEND": "reactive_blocks.RedisBus", "OPTIONS": options}
            }
        ),
        pytest.raises(ImproperlyConfigured, match=message),
    ):
        get_bus()


def test_get_hubs_at_its_old_path_still_works_and_says_where_it_went():
    import warnings

    import reactive_blocks.runtime
    from reactive_blocks.streams.hubs import get_hubs

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        moved = reactive_blocks.runtime.get_hubs
    assert moved is get_hubs
    assert caught[0].category is DeprecationWarning
    assert "reactive_blocks.streams.hubs.get_hubs" in str(caught[0].message)
