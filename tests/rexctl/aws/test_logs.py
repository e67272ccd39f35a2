"""The CloudWatch Logs adapter: awslogs options and phrase searches (moto, and a Stubber for what
moto does not show: pagination and a server that ignores the pattern)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from rexctl.aws.ecs import TaskDefinition
from rexctl.aws.logs import AwsLogsConfig, LogEvent, LogGroupNotFound, awslogs_config, search_events

T0 = (int(time.time()) - 600) * 1000  # recent: CloudWatch drops events older than 14 days


def td_with(log_configuration: dict[str, Any] | None) -> TaskDefinition:
    container: dict[str, Any] = {"name": "backend", "image": "b"}
    if log_configuration is not None:
        container["logConfiguration"] = log_configuration
    raw = {"family": "f", "revision": 1, "containerDefinitions": [container]}
    return TaskDefinition(arn="arn:f:1", family="f", revision=1, raw=raw, tags=[])


def test_awslogs_config() -> None:
    td = td_with(
        {
            "logDriver": "awslogs",
            "options": {"awslogs-group": "/ecs/b", "awslogs-stream-prefix": "ecs",
                        "awslogs-region": "eu-west-1"},
        }
    )  # fmt: skip
    config = awslogs_config(td, "backend")
    assert config == AwsLogsConfig(group="/ecs/b", stream_prefix="ecs", region="eu-west-1")
    assert config.task_stream_prefix("backend") == "ecs/backend/"
    assert AwsLogsConfig("/g", "", "").task_stream_prefix("backend") == ""


@pytest.mark.parametrize(
    "log_configuration",
    [None, {"logDriver": "json-file"}, {"logDriver": "awslogs", "options": {}}],
    ids=["none", "other-driver", "no-group"],
)
def test_no_awslogs_config(log_configuration: dict[str, Any] | None) -> None:
    assert awslogs_config(td_with(log_configuration), "backend") is None


@pytest.fixture
def logs() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("logs", region_name="us-east-1")
        client.create_log_group(logGroupName="/ecs/b")
        for stream, messages in {
            "ecs/backend/task1": ["starting", "✅ Redis ready", "⚠️ Redis error (ignored): boom"],
            "ecs/backend/task2": ["✅ Redis ready"],
            "ecs/other/task3": ["✅ Redis ready"],
        }.items():
            client.create_log_stream(logGroupName="/ecs/b", logStreamName=stream)
            client.put_log_events(
                logGroupName="/ecs/b",
                logStreamName=stream,
                logEvents=[{"timestamp": T0 + i, "message": m} for i, m in enumerate(messages)],
            )
        yield client


def test_search_events_by_phrase_and_prefix(logs: Any) -> None:
    ready = search_events(
        logs, group="/ecs/b", stream_prefix="ecs/backend/", phrase="Redis ready", start_ms=T0
    )
    assert (
        ready
        == [
            LogEvent("ecs/backend/task1", T0 + 1, "✅ Redis ready"),
            LogEvent("ecs/backend/task2", T0, "✅ Redis ready"),
        ][::-1]
    )
    errors = search_events(
        logs, group="/ecs/b", stream_prefix="ecs/backend/", phrase="Redis error", start_ms=T0
    )
    assert [e.message for e in errors] == ["⚠️ Redis error (ignored): boom"]
    everywhere = search_events(logs, group="/ecs/b", stream_prefix="", phrase="Redis ready",
                               start_ms=T0)  # fmt: skip
    assert len(everywhere) == 3


def test_search_events_respects_the_time_window(logs: Any) -> None:
    assert search_events(logs, group="/ecs/b", stream_prefix="", phrase="Redis ready",
                         start_ms=T0 + 2) == []  # fmt: skip
    early = search_events(logs, group="/ecs/b", stream_prefix="", phrase="Redis ready",
                          start_ms=T0, end_ms=T0)  # fmt: skip
    assert [e.stream for e in early] == ["ecs/backend/task2", "ecs/other/task3"]


def test_search_events_missing_group(logs: Any) -> None:
    with pytest.raises(LogGroupNotFound, match="The log group '/ecs/nope' does not exist"):
        search_events(logs, group="/ecs/nope", stream_prefix="", phrase="x", start_ms=T0)


def test_search_events_refuses_a_quote() -> None:
    with pytest.raises(ValueError, match="double quotes"):
        search_events(None, group="g", stream_prefix="", phrase='a"b', start_ms=0)  # type: ignore[arg-type]


def test_search_events_paginates_and_filters_what_the_server_did_not() -> None:
    """A server that ignores the pattern (moto for most patterns) still gives the right answer."""
    client = boto3.client("logs", region_name="us-east-1")
    base = {"logGroupName": "/g", "filterPattern": '"Redis ready"', "startTime": T0,
            "logStreamNamePrefix": "p/backend/"}  # fmt: skip
    stubber = Stubber(client)
    stubber.add_response(
        "filter_log_events",
        {
            "events": [
                {"logStreamName": "p/backend/t1", "timestamp": T0, "message": "hello"},
                {"logStreamName": "p/backend/t1", "timestamp": T0 + 5, "message": "Redis ready"},
            ],
            "nextToken": "page2",
        },
        base,
    )
    stubber.add_response(
        "filter_log_events",
        {"events": [{"logStreamName": "q/other", "timestamp": T0 + 1, "message": "Redis ready"},
                    {"logStreamName": "p/backend/t2", "timestamp": T0 + 2,
                     "message": "✅ Redis ready"}]},
        {**base, "nextToken": "page2"},
    )  # fmt: skip
    with stubber:
        events = search_events(
            client, group="/g", stream_prefix="p/backend/", phrase="Redis ready", start_ms=T0
        )
        stubber.assert_no_pending_responses()
    assert events == [
        LogEvent("p/backend/t2", T0 + 2, "✅ Redis ready"),
        LogEvent("p/backend/t1", T0 + 5, "Redis ready"),
    ]


def test_a_search_that_stops_at_its_page_limit_says_it_is_incomplete(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """CloudWatch Logs FilterLogEvents answers a nextToken as long as there is more to search,
    pages with no events included (it may scan a while before it finds any). A search that stops
    at MAX_PAGES has not read everything: it never answers "no events"."""
    from rexctl.aws import logs as logs_mod
    from rexctl.aws.logs import LogSearchIncomplete

    monkeypatch.setattr(logs_mod, "MAX_PAGES", 2)
    client = boto3.client("logs", region_name="us-east-1")
    base = {"logGroupName": "/g", "filterPattern": '"Redis error"', "startTime": T0}
    noise = {"logStreamName": "s", "timestamp": T0, "message": "hello"}
    hit = {"logStreamName": "s", "timestamp": T0 + 1, "message": "Redis error (ignored)"}

    def pages(stubber: Stubber, first: list[Any]) -> None:
        stubber.add_response("filter_log_events", {"events": first, "nextToken": "p2"}, base)
        stubber.add_response(
            "filter_log_events", {"events": [noise], "nextToken": "p3"}, {**base, "nextToken": "p2"}
        )

    stubber = Stubber(client)
    pages(stubber, [noise])
    with stubber:
        with pytest.raises(LogSearchIncomplete) as err:
            search_events(client, group="/g", stream_prefix="", phrase="Redis error", start_ms=T0)
        stubber.assert_no_pending_responses()
    assert err.value.message == (
        "The search of log group /g for 'Redis error' stopped after 2 pages, before the end of "
        'what there is to read: nothing was found in what it read, which is not "no events".'
    )
    stubber = Stubber(client)
    pages(stubber, [hit])
    with stubber:
        found = search_events(client, group="/g", stream_prefix="", phrase="Redis error",
                              start_ms=T0)  # fmt: skip
    assert found == [LogEvent("s", T0 + 1, "Redis error (ignored)")]
    assert found.complete is False, "what it found is real, and it says it did not read it all"
    assert search_events_complete(client) is True


def search_events_complete(client: Any) -> bool:
    stubber = Stubber(client)
    stubber.add_response("filter_log_events", {"events": []})
    with stubber:
        return search_events(client, group="/g", stream_prefix="", phrase="x", start_ms=T0).complete
