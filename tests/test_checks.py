"""Each system check against a fixture project with one deliberate fault per check."""

from __future__ import annotations

import io
import json
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError, SystemCheckError
from django.test import override_settings

from reactive_blocks import get_index
from reactive_blocks.checks import CHECK_IDS, check_deployment, check_reactive_contract

FIXTURES = Path(__file__).resolve().parent / "fixture_project"


@pytest.fixture(autouse=True)
def _no_tracked_models(monkeypatch):
    """The test app's tracked models would add their own reactive_paths warnings."""
    monkeypatch.setattr("reactive_blocks.tracking.registry._trackers", {})


def engine(directory: Path) -> list[dict[str, object]]:
    return [
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "DIRS": [directory],
        }
    ]


@contextmanager
def faulty_project():
    with override_settings(
        TEMPLATES=engine(FIXTURES / "templates"),
        REACTIVE_BLOCKS={
            "EMITTED_PATHS": ["doc.unread"],
            "AUDIENCE_SCOPES": ["doc-*"],
            "URLCONF": "tests.faulty_streams",
            "BUS": {"BACKEND": "reactive_blocks.ReactiveBus"},
        },
        MIDDLEWARE=["django.middleware.gzip.GZipMiddleware"],
    ):
        index = get_index()
        index.derive("doc.a", from_paths={"doc.b"})
        index.derive("doc.b", from_paths={"doc.a"})
        index.register_block("opaque.html", "renamed", {"doc.x"})
        yield


# A bus that reaches every process; never connected by these tests.
REDIS_BUS = {
    "BACKEND": "reactive_blocks.RedisBus",
    "OPTIONS": {"url": "redis://127.0.0.1:9/0"},
}


@contextmanager
def clean_project(**reactive_blocks):
    with override_settings(
        TEMPLATES=engine(FIXTURES / "clean"),
        REACTIVE_BLOCKS={
            "EMITTED_PATHS": ["doc.content"],
            "BUS": REDIS_BUS,
            **reactive_blocks,
        },
        ASGI_APPLICATION="demo_project.asgi.application",
    ):
        get_index().derive("doc.word_count", from_paths={"doc.content"})
        yield


def run(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("reactive_check", *args, stdout=out)
    except CommandError as exc:
        return exc.returncode, out.getvalue()
    return 0, out.getvalue()


def test_each_fault_is_reported_with_its_id_and_place():
    with faulty_project():
        found = sorted((m.id, str(m.obj)) for m in check_reactive_contract())
        deploy = sorted((m.id, str(m.obj)) for m in check_deployment())
    assert found == [
        ("reactive_blocks.E001", "missing_block.html:3"),
        ("reactive_blocks.E001", "opaque.html"),
        ("reactive_blocks.E003", "bad_connect.html:2"),
        ("reactive_blocks.E003", "bad_connect.html:3"),
        ("reactive_blocks.E004", "tests.faulty_streams.OrphanStream"),
        ("reactive_blocks.E004", "tests.streams_urls.PageStream"),
        ("reactive_blocks.E004", "tests.streams_urls.QuietStream"),
        ("reactive_blocks.E005", "settings.TEMPLATES"),
        ("reactive_blocks.W001", "DependencyIndex"),
        ("reactive_blocks.W002", "doc.unread"),
        ("reactive_blocks.W003", "doc-*"),
        ("reactive_blocks.W004", "opaque.html:2"),
        ("reactive_blocks.W005", "unconnected.html:1"),
        ("reactive_blocks.W006", "duplicate_ids.html:3"),
        ("reactive_blocks.W007", "dynamic.html:2"),
        ("reactive_blocks.W008", "broken.html:2"),
        ("reactive_blocks.W011", "settings.MIDDLEWARE"),
        ("reactive_blocks.W012", "settings.REACTIVE_BLOCKS"),
        ("reactive_blocks.W013", "outside.html:2"),
        ("reactive_blocks.W014", "tests.faulty_streams.OrphanStream"),
        # No model is tracked in these tests: nothing emits to "doc-1" either.
        ("reactive_blocks.W014", "tests.streams_urls.PageStream"),
    ]
    assert deploy == [
        ("reactive_blocks.W009", "settings.ASGI_APPLICATION"),
        ("reactive_blocks.W010", "settings.MIDDLEWARE"),
    ]


def test_every_catalogued_id_is_produced_by_the_fixture_and_ids_are_unique():
    with faulty_project():
        produced = {m.id for m in [*check_reactive_contract(), *check_deployment()]}
    # These need projects of their own (tests below).
    own = {f"reactive_blocks.{key}" for key in ("E002", "W015", "W016", "W017")}
    assert produced | own == {f"reactive_blocks.{key}" for key in CHECK_IDS}
    names = [meaning.split(":")[0] for meaning in CHECK_IDS.values()]
    assert len(set(names)) == len(names)


def test_messages_carry_hints():
    with faulty_project():
        messages = [*check_reactive_contract(), *check_deployment()]
    assert all(m.hint for m in messages)
    # What a template causes names the template and the line (but for a block
    # registered by hand, which has no line to point at).
    in_templates = [str(m.obj) for m in messages if ".html" in str(m.obj)]
    assert [o for o in in_templates if not o.rsplit(":", 1)[-1].isdigit()] == [
        "opaque.html"
    ]
    cycle = next(m for m in messages if m.id == "reactive_blocks.W001")
    assert cycle.msg == "Derived paths form a cycle: doc.a -> doc.b -> doc.a."


def test_reactive_check_exits_non_zero_on_error():
    with faulty_project():
        code, output = run()
    assert code == 1
    for check_id in (
        "E001",
        "E003",
        "W001",
        "W002",
        "W003",
        "W004",
        "W005",
        "W006",
        "W007",
        "W008",
        "W011",
        "W013",
    ):
        assert f"reactive_blocks.{check_id}" in output
    assert "W009" not in output  # deployment checks only with --deploy
    assert "reactive_check: 8 error(s), 13 warning(s)." in output
    # The names DESIGN gives the checks appear beside their ids.
    assert "[reactive_block] missing_block.html:3: (reactive_blocks.E001)" in output
    for name in ("reactive_cycle", "reactive_paths", "reactive_audience"):
        assert f"[{name}]" in output


def test_django_check_runs_the_same_checks():
    with (
        faulty_project(),
        pytest.raises(SystemCheckError, match=r"reactive_blocks\.E001"),
    ):
        call_command("check", stdout=io.StringIO(), stderr=io.StringIO())


def test_clean_project_passes():
    with clean_project():
        code, output = run("--deploy")
    assert code == 0
    assert "reactive_check: 0 error(s), 0 warning(s)." in output


def test_warnings_pass_by_default_and_fail_with_fail_level_warning():
    with clean_project(EMITTED_PATHS=["doc.typo"]):
        default_code, _ = run()
        strict_code, output = run("--fail-level", "WARNING")
    assert default_code == 0
    assert strict_code == 1
    assert "reactive_blocks.W002" in output


def test_explain_prints_the_lookup():
    with clean_project():
        code, output = run("--explain", "doc.content")
    assert code == 0
    assert output.startswith(
        "Changed paths: doc.content\n"
        "Derived paths: doc.word_count\n"
        "Re-rendered blocks:\n"
        "  page.html :: content  #body\n"
        "  page.html :: stats  #stats\n"
    )


def test_json_output():
    with faulty_project():
        code, output = run("--json", "--deploy", "--explain", "doc.b")
    assert code == 1
    result = json.loads(output)
    ids = sorted({m["id"] for m in result["messages"]})
    assert ids == sorted(
        f"reactive_blocks.{key}"
        for key in CHECK_IDS
        if key not in {"E002", "W015", "W016", "W017"}
    )
    e001 = next(m for m in result["messages"] if m["obj"] == "missing_block.html:3")
    assert e001["level"] == "ERROR"
    assert e001["name"] == "reactive_block"
    assert "sse-swap='comments'" in e001["message"]
    assert result["explain"]["expanded_paths"] == ["doc.a", "doc.b"]


def test_silenced_checks_are_not_reported():
    with (
        clean_project(EMITTED_PATHS=["doc.typo"]),
        override_settings(SILENCED_SYSTEM_CHECKS=["reactive_blocks.W002"]),
    ):
        code, output = run("--fail-level", "WARNING")
    assert code == 0
    assert "W002" not in output


def test_explain_rejects_a_malformed_path():
    with (
        clean_project(),
        pytest.raises(
            CommandError, match=r"--explain: .*'a b' is not a dotted context path"
        ),
    ):
        call_command("reactive_check", "--explain", "a b", stdout=io.StringIO())


def test_a_problem_in_a_shared_base_is_reported_once(tmp_path):
    (tmp_path / "base.html").write_text(
        '<main sse-connect="/s"><p sse-swap="{{ name }}">{% block a %}{% endblock %}</p>'
        "{% block body %}{% endblock %}</main>"
    )
    for n in range(3):
        (tmp_path / f"page{n}.html").write_text('{% extends "base.html" %}')
    with override_settings(TEMPLATES=engine(tmp_path)):
        ids = [m.id for m in check_reactive_contract()]
    # W012: the test settings' in-process bus.
    assert ids == ["reactive_blocks.W007", "reactive_blocks.W012"]


def test_a_tracked_prefix_that_no_block_reads_is_reported(monkeypatch):
    from reactive_blocks.tracking import Tracker
    from tests.models import Document

    read = Tracker(Document, "doc-{pk}", "doc", frozenset({"title"}), frozenset())
    unread = Tracker(Document, "doc-{pk}", "docs", frozenset({"title"}), frozenset())
    monkeypatch.setattr(
        "reactive_blocks.tracking.registry._trackers", {Document: read, object: unread}
    )
    with clean_project():
        found = [(m.id, m.obj) for m in check_reactive_contract()]
    assert found == [("reactive_blocks.W002", "docs")]


def test_each_listed_field_that_no_block_reads_is_reported(monkeypatch):
    """track(fields=[...]) lists what pages show: each field must be read (this
    used to check only the prefix, since fields= never marked the tracker)."""
    from reactive_blocks.tracking.track import _build
    from tests.models import Document

    listed = _build(Document, "doc-{pk}", "doc", ["content", "version"], ())
    whole = _build(Document, "doc-{pk}", "doc", None, ())
    bare = _build(Document, None, None, None, ())
    assert listed.chosen
    assert not whole.chosen
    monkeypatch.setattr(
        "reactive_blocks.tracking.registry._trackers", {Document: listed}
    )
    with clean_project():
        found = [(m.id, m.obj) for m in check_reactive_contract()]
    # The clean project's page reads doc.content, not doc.version.
    assert found == [("reactive_blocks.W002", "doc.version")]
    # A model tracked bare is followed by live pages, not by a path: no W002.
    assert bare.declared_paths() == set()


def test_unusable_settings_are_an_error():
    with override_settings(
        REACTIVE_BLOCKS={
            "BUS": {
                "BACKEND": "reactive_blocks.ReactiveBus",
                "OPTIONS": {"max_size": 5},
            }
        }
    ):
        (message,) = check_reactive_contract()
        code, _output = run()
    assert message.id == "reactive_blocks.E002"
    assert "do not suit reactive_blocks.ReactiveBus" in message.msg
    assert code == 1


def test_an_in_process_bus_is_a_warning_in_both_commands():
    in_process = {"BACKEND": "reactive_blocks.ReactiveBus"}
    with clean_project(BUS=in_process):
        code, output = run()
        assert code == 0
        assert "[reactive_deploy_bus]" in output
        assert "changes saved in other processes" in output
        django_output = io.StringIO()
        call_command("check", stdout=django_output, stderr=django_output)
        assert "reactive_blocks.W012" in django_output.getvalue()
    # The default bus, like Redis, reaches every process.
    with clean_project(BUS={"BACKEND": "reactive_blocks.DatabaseBus"}):
        assert "reactive_blocks.W012" not in run()[1]


def test_a_connect_with_a_wrong_route_or_arguments_says_how_to_fix_it():
    with faulty_project():
        messages = {
            str(m.obj): m for m in check_reactive_contract() if m.id.endswith("E003")
        }
    unknown, arguments = messages["bad_connect.html:2"], messages["bad_connect.html:3"]
    assert unknown.msg == (
        '{% reactive_connect "no-such-route" %} names no stream route in '
        "tests.faulty_streams (its routes: orphan-live, page-live, quiet-live)."
    )
    assert "stream_path()" in unknown.hint
    assert arguments.msg == (
        '{% reactive_connect "page-live" %} gives the URL arguments (id); '
        "the route takes (pk)."
    )
    assert arguments.hint.endswith('{% reactive_connect "page-live" pk=... %}.')


def test_one_misspelled_swap_is_one_message(tmp_path):
    (tmp_path / "base.html").write_text(
        '<main hx-ext="sse" sse-connect="/live/">\n'
        '<h1 id="t" sse-swap="titel">{% block title %}{{ doc.title }}{% endblock %}'
        "</h1>{% block content %}{% endblock %}</main>"
    )
    for page in ("one.html", "two.html"):
        (tmp_path / page).write_text('{% extends "base.html" %}')
    with override_settings(TEMPLATES=engine(tmp_path), REACTIVE_BLOCKS={}):
        found = [(m.id, str(m.obj)) for m in check_reactive_contract()]
    assert found == [("reactive_blocks.E001", "base.html:2")]


def test_a_missing_urlconf_is_said_once_for_every_connect(tmp_path):
    for page in ("one.html", "two.html"):
        (tmp_path / page).write_text(
            '{% load reactive_blocks %}<main {% reactive_connect "doc-live" pk=1 %}>'
        )
    with override_settings(TEMPLATES=engine(tmp_path), REACTIVE_BLOCKS={}):
        found = [m for m in check_reactive_contract() if m.id.endswith("E003")]
    assert len(found) == 1
    assert "needs REACTIVE_BLOCKS" in found[0].msg


def test_pages_that_stream_themselves_need_get_asgi_application():
    with (
        faulty_project(),
        override_settings(ASGI_APPLICATION="tests.plain_asgi.application"),
    ):
        (message,) = [m for m in check_reactive_contract() if m.id.endswith("W015")]
    assert "not made by reactive_blocks.asgi.get_asgi_application()" in message.msg
    assert "/_reactive/page/" in message.msg
    with (
        faulty_project(),
        override_settings(ASGI_APPLICATION="tests.pages_site.asgi.application"),
    ):
        ids = [m.id for m in check_reactive_contract()]
    assert "reactive_blocks.W015" not in ids
    # get_asgi_application() sets the origin: ReactiveMiddleware is not missing.
    assert "reactive_blocks.W011" not in ids


def test_a_stream_class_whose_template_has_no_live_block_is_an_error(tmp_path):
    (tmp_path / "stream").mkdir()
    (tmp_path / "stream" / "page.html").write_text("<h1>{{ doc.title }}</h1>")
    with override_settings(
        TEMPLATES=engine(tmp_path), REACTIVE_BLOCKS={"URLCONF": "tests.streams_urls"}
    ):
        messages = [m for m in check_reactive_contract() if m.id.endswith("E004")]
    assert [str(m.obj) for m in messages] == [
        "tests.streams_urls.PageStream",
        "tests.streams_urls.QuietStream",
    ]
    assert "has no sse-swap block" in messages[0].msg


def test_a_stream_class_following_a_scope_nothing_emits_to_is_a_warning(monkeypatch):
    from reactive_blocks.tracking.track import _build
    from tests.models import Document

    tracker = _build(Document, "doc-{pk}", "doc", None, ())
    monkeypatch.setattr(
        "reactive_blocks.tracking.registry._trackers", {Document: tracker}
    )
    with faulty_project():
        warned = [
            str(m.obj) for m in check_reactive_contract() if m.id.endswith("W014")
        ]
    # PageStream follows doc-<pk>, which Document's rows emit to.
    assert warned == ["tests.faulty_streams.OrphanStream"]


def test_a_page_streaming_itself_without_the_request_processor_is_an_error():
    engine_without = [
        {**engine(FIXTURES / "templates")[0], "OPTIONS": {"context_processors": []}}
    ]
    with faulty_project(), override_settings(TEMPLATES=engine_without):
        (message,) = [m for m in check_reactive_contract() if m.id.endswith("E005")]
    assert "django.template.context_processors.request" in message.msg
    assert message.obj == "settings.TEMPLATES"


@contextmanager
def live_pages(monkeypatch, tracked):
    from reactive_blocks.tracking.track import _build

    monkeypatch.setattr(
        "reactive_blocks.tracking.registry._trackers",
        {model: _build(model, scope, None, None, ()) for model, scope in tracked},
    )
    processors = [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
    ]
    templates = [
        {
            **engine(FIXTURES / "live_templates")[0],
            "OPTIONS": {"context_processors": processors},
        }
    ]
    with override_settings(
        TEMPLATES=templates,
        ROOT_URLCONF="tests.fixture_project.live_urls",
        REACTIVE_BLOCKS={"BUS": {"BACKEND": "reactive_blocks.DatabaseBus"}},
    ):
        yield


def test_a_live_block_reading_a_name_its_view_does_not_give_is_reported(monkeypatch):
    from tests.models import Note

    with live_pages(monkeypatch, [(Note, None)]):
        messages = [m for m in check_reactive_contract() if m.id.endswith("W016")]
    # ok.html reads note (DetailView's name for a Note), object and user: all given.
    assert [(str(m.obj), m.id) for m in messages] == [
        ("typo.html:title", "reactive_blocks.W016")
    ]
    assert "'nte'" in messages[0].msg
    assert "tests.fixture_project.live_urls.typo" in messages[0].msg
    assert "note" in messages[0].hint


def test_a_tracked_model_that_no_page_follows_is_reported(monkeypatch):
    from tests.models import Document, Note, Remark

    tracked = [(Note, None), (Remark, None), (Document, "doc-{pk}")]
    with live_pages(monkeypatch, tracked):
        messages = [m for m in check_reactive_contract() if m.id.endswith("W017")]
    # Note is in the views' contexts; a Remark points at a Note (note.remarks).
    assert [str(m.obj) for m in messages] == ["tests.Document"]
    assert "its saves reach no page" in messages[0].msg
