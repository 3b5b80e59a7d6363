"""Logs (context, JSON lines, rate limiting), the optional OpenTelemetry span, metric switches."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from types import SimpleNamespace

import pytest
from django.test import override_settings

import project.asgi  # noqa: F401  (its django.setup() reconfigures logging: done before tests)
from wscommands import ClientError, command
from wscommands.checks import check_observability
from wscommands.observability import logs, metrics, tracing
from wscommands.testing import CommandClient


@pytest.fixture(autouse=True)
def _commands(scratch):
    @command(name="t.bug")
    async def bug(connection):
        raise KeyError("oops")

    @command(name="t.refuse")
    async def refuse(connection):
        raise ClientError("no")

    @command(name="t.echo")
    async def echo(connection, text: str):
        return text

    yield


@pytest.fixture
def json_log():
    """The ``wscommands`` records as the JSON lines logging_config's handler would write."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(logs.ContextFilter())
    handler.setFormatter(logs.JSONFormatter())
    logger = logging.getLogger("wscommands")
    logger.addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logger.removeHandler(handler)


async def test_a_bug_is_one_json_error_line_with_the_connection(json_log):
    """A command that raises: ERROR on wscommands.command with the traceback, the connection id
    and user; repeats on the same connection within the interval add no line."""
    async with CommandClient() as client:
        for _ in range(5):
            reply = await client.request({"t.bug": {}})
            assert reply["errors"]["t.bug"]["code"] == "command_failed"
    lines = json_log()
    assert len(lines) == 1, lines
    (line,) = lines
    assert line["level"] == "ERROR"
    assert line["logger"] == "wscommands.command"
    assert "KeyError" in line["exc"]
    assert line["user"] == "anonymous"
    assert "~" in line["connection_id"]  # <process channel>~<local id>


async def test_client_errors_write_no_line(json_log):
    """ClientError is an answer, not an event: nothing is logged."""
    async with CommandClient() as client:
        for _ in range(3):
            assert (await client.request({"t.refuse": {}}))["errors"]["t.refuse"]["code"]
    assert json_log() == []


def test_rate_limit_counts_what_it_left_out(monkeypatch):
    """Within INTERVAL one line per kind; the next one after it says how many were left out."""
    now = [1000.0]
    monkeypatch.setattr(logs.time, "monotonic", lambda: now[0])
    context = logs.LogContext(None)
    assert context.allow("x") == (True, 0)
    assert [context.allow("x") for _ in range(3)] == [(False, 0)] * 3
    assert context.allow("y") == (True, 0)  # another kind has its own budget
    now[0] += logs.INTERVAL
    assert context.allow("x") == (True, 3)
    assert context.allow("x") == (False, 0)


def test_rate_limit_remembers_a_bounded_number_of_kinds():
    """A client cannot grow the per-connection log state by varying the kind."""
    context = logs.LogContext(None)
    for i in range(logs.MAX_KINDS * 3):
        context.allow(f"kind-{i}")
    assert len(context._seen) == logs.MAX_KINDS


def test_logging_config_has_one_handler_and_replaces_roots():
    """logging_config: one handler, on root; wscommands only sets a level and propagates."""
    config = logs.logging_config(json_lines=True)
    assert list(config["handlers"]) == ["console"]
    assert config["root"]["handlers"] == ["console"]
    assert config["loggers"]["wscommands"]["handlers"] == []
    assert config["formatters"]["wscommands"] == {
        "()": "wscommands.observability.logs.JSONFormatter"
    }


def test_metrics_view_404_when_off_403_without_token(client, settings):
    """/metrics: off -> 404; on without token or staff -> 403; with the token -> the metrics."""
    token = "t" * 32
    with override_settings(WSCOMMANDS={**settings.WSCOMMANDS, "METRICS": False}):
        assert client.get("/metrics").status_code == 404
    with override_settings(WSCOMMANDS={**settings.WSCOMMANDS, "METRICS_TOKEN": token}):
        assert client.get("/metrics").status_code == 403
        ok = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200
        assert b"wscommands_command_duration_seconds" in ok.content
    assert metrics.available()


async def test_one_opentelemetry_span_per_command():
    """With an SDK tracer provider set, each command is a SERVER span with rpc.* attributes."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    tracing.look_again()  # earlier tests ran commands: the next look would be up to 1 s away
    async with CommandClient() as client:
        await client.request({"t.echo": {"text": "a"}, "t.refuse": {}})
    spans = {span.name: span for span in exporter.get_finished_spans()}
    assert set(spans) == {"wscommands/t.echo", "wscommands/t.refuse"}
    echo = spans["wscommands/t.echo"]
    assert echo.kind == trace.SpanKind.SERVER
    assert echo.attributes["rpc.system"] == "wscommands"
    assert echo.attributes["rpc.method"] == "t.echo"
    assert echo.status.is_ok
    assert spans["wscommands/t.refuse"].status.status_code == trace.StatusCode.ERROR


async def test_process_tasks_log_without_the_connection_that_started_them(json_log):
    """A task started from a connection's task carries its id; a process task (the hub's loops,
    started by whichever connection came first) does not."""
    stand_in = SimpleNamespace(id="proc~7", user=None, is_authenticated=lambda: False)

    async def work(message: str) -> None:
        logs.layer_logger.warning(message)

    async def connection_task() -> None:
        logs.bind(stand_in)
        await asyncio.create_task(work("child"))
        await logs.process_task(work("process-wide"), "t-process")

    await asyncio.create_task(connection_task())
    assert [(line["message"], line["connection_id"]) for line in json_log()] == [
        ("child", "proc~7"),
        ("process-wide", "-"),
    ]


def test_short_metrics_token_is_refused_at_start_up(settings):
    """A guessable METRICS_TOKEN is a start-up error (E007) that says how to make a good one."""
    for token, expected in (("short", ["wscommands.E007"]), ("x" * 32, []), (None, [])):
        with override_settings(WSCOMMANDS={**settings.WSCOMMANDS, "METRICS_TOKEN": token}):
            assert [e.id for e in check_observability()] == expected
