from __future__ import annotations

import pytest

from reactive_blocks.streams.sse import encode_comment, encode_event, encode_retry


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"data": "hello"}, b"data: hello\n\n"),
        ({"data": ""}, b"data: \n\n"),
        (
            {"data": "<p>a</p>", "event": "content", "id": "7"},
            b"event: content\nid: 7\ndata: <p>a</p>\n\n",
        ),
        ({"data": "one\ntwo"}, b"data: one\ndata: two\n\n"),
        ({"data": "one\r\ntwo\rthree"}, b"data: one\ndata: two\ndata: three\n\n"),
        ({"data": "trailing\n"}, b"data: trailing\ndata: \n\n"),
        ({"data": "\n\n"}, b"data: \ndata: \ndata: \n\n"),
        (
            {"data": "x", "event": "a\nb", "id": "1\r\n2"},
            b"event: ab\nid: 12\ndata: x\n\n",
        ),
        ({"data": "caf\u00e9 \u2603"}, "data: caf\u00e9 \u2603\n\n".encode()),
        (
            {"data": "data: fake\n\nevent: evil"},
            b"data: data: fake\ndata: \ndata: event: evil\n\n",
        ),
    ],
)
def test_encode_event(kwargs, expected):
    assert encode_event(**kwargs) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("ping", b": ping\n\n"), ("", b": \n\n"), ("a\nb", b": a\n: b\n\n")],
)
def test_encode_comment(text, expected):
    assert encode_comment(text) == expected


def test_encode_retry():
    assert encode_retry(2500) == b"retry: 2500\n\n"
    with pytest.raises(
        ValueError, match="retry must be a non-negative int of milliseconds, got -1"
    ):
        encode_retry(-1)


def test_text_that_is_not_valid_unicode_is_replaced_not_raised():
    assert encode_event("a\ud800b", event="t\udfff") == b"event: t?\ndata: a?b\n\n"
    assert encode_comment("\ud83d") == b": ?\n\n"
