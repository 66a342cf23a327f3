from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from reactive_blocks.conf import conf


@override_settings(REACTIVE_BLOCKS={})
def test_defaults():
    # The embedded bus: across the processes of one machine, with no Redis.
    assert conf.BUS.backend == "reactive_blocks.DatabaseBus"
    assert conf.BUS.options == {"maxsize": 256}
    assert conf.HEARTBEAT_SECONDS == 15
    assert conf.STREAM_MAX_SECONDS == 3600


@override_settings(REACTIVE_BLOCKS={"HEARTBEAT_SECONDS": 0.5, "STREAM_MAX_SECONDS": 2})
def test_override_settings_is_read_live():
    assert conf.HEARTBEAT_SECONDS == 0.5
    assert conf.STREAM_MAX_SECONDS == 2.0


@override_settings(REACTIVE_BLOCKS={"HEARTBEAT": 5})
def test_unknown_key_is_named():
    with pytest.raises(
        ImproperlyConfigured,
        match="unknown key\\(s\\) 'HEARTBEAT'; known keys are ARGUMENT_TAGS, AUDIENCE_SCOPES, BUS",
    ):
        conf.HEARTBEAT_SECONDS  # noqa: B018


@override_settings(REACTIVE_BLOCKS=[("BUS", {})])
def test_setting_must_be_a_dict():
    with pytest.raises(
        ImproperlyConfigured, match="REACTIVE_BLOCKS must be a dict, got list"
    ):
        conf.BUS  # noqa: B018


@pytest.mark.parametrize("value", [0, -3, "15", True, None, float("nan"), float("inf")])
def test_seconds_must_be_positive_numbers(value):
    with (
        override_settings(REACTIVE_BLOCKS={"HEARTBEAT_SECONDS": value}),
        pytest.raises(
            ImproperlyConfigured,
            match=f"'HEARTBEAT_SECONDS'\\] must be a positive number of seconds, got {value!r}",
        ),
    ):
        conf.HEARTBEAT_SECONDS  # noqa: B018


@pytest.mark.parametrize(
    "bus", ["reactive_blocks.ReactiveBus", {"OPTIONS": {}}, {"BACKEND": 3}]
)
def test_bus_needs_backend(bus):
    with (
        override_settings(REACTIVE_BLOCKS={"BUS": bus}),
        pytest.raises(
            ImproperlyConfigured, match="must be a dict with a 'BACKEND' dotted path"
        ),
    ):
        conf.BUS  # noqa: B018


@override_settings(REACTIVE_BLOCKS={"BUS": {"BACKEND": "x.Y", "OPTIONS": [1]}})
def test_bus_options_must_be_a_dict():
    with pytest.raises(
        ImproperlyConfigured, match="\\['OPTIONS'\\] must be a dict, got \\[1\\]"
    ):
        conf.BUS  # noqa: B018


@override_settings(
    REACTIVE_BLOCKS={"MAX_BUFFERED_BYTES": 1000, "MAX_FRAGMENT_BYTES": 1001}
)
def test_a_fragment_may_not_exceed_what_a_stream_may_buffer():
    with pytest.raises(
        ImproperlyConfigured,
        match=r"MAX_FRAGMENT_BYTES'\] is 1001, more than MAX_BUFFERED_BYTES \(1000\)",
    ):
        conf.MAX_FRAGMENT_BYTES  # noqa: B018


def test_fragment_limit_default_fits_the_buffer():
    assert conf.MAX_FRAGMENT_BYTES == 256 * 1024 <= conf.MAX_BUFFERED_BYTES


@override_settings(REACTIVE_BLOCKS={"ARGUMENT_TAGS": ["show_price"]})
def test_argument_tags_are_tag_names():
    assert conf.ARGUMENT_TAGS == ("show_price",)


@override_settings(REACTIVE_BLOCKS={"STREAMS_PATH": "streams"})
def test_streams_path_must_be_a_url_path():
    with pytest.raises(
        ImproperlyConfigured, match="STREAMS_PATH'\\] must be a URL path"
    ):
        _ = conf.STREAMS_PATH


@override_settings(REACTIVE_BLOCKS={})
def test_fragments_go_straight_to_the_socket_by_default():
    assert conf.DIRECT_WRITES is True


@override_settings(REACTIVE_BLOCKS={"DIRECT_WRITES": 0})
def test_direct_writes_is_true_or_false():
    with pytest.raises(
        ImproperlyConfigured,
        match=r"REACTIVE_BLOCKS\['DIRECT_WRITES'\] must be True or False, got 0",
    ):
        conf.DIRECT_WRITES  # noqa: B018
