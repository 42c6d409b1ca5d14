"""The job's graceful stop: between micro-batches, never inside one (no Spark started)."""

from __future__ import annotations

import threading
from typing import List

import pytest

pytest.importorskip("pyspark")

from customer_pipeline.stream.job import GracefulStop, StopRequested, root_cause  # noqa: E402


class FakeQuery:
    def __init__(self) -> None:
        self.stopped = threading.Event()
        self.stopped_by: List[str] = []

    def stop(self) -> None:
        self.stopped_by.append(threading.current_thread().name)
        self.stopped.set()


def test_an_idle_query_stops_at_once() -> None:
    stop = GracefulStop()
    stop.query = FakeQuery()
    stop.request()
    assert stop.query.stopped.is_set()


def test_a_running_batch_finishes_before_the_query_stops() -> None:
    stop = GracefulStop()
    query = stop.query = FakeQuery()
    stop.batch_starting()
    stop.request()
    assert not query.stopped.is_set()  # the batch is still writing
    stop.batch_finished()
    assert query.stopped.wait(5)
    # From another thread: the query's own thread is the one that ran the batch.
    assert query.stopped_by == ["stop-query"]


def test_a_batch_that_starts_after_the_stop_writes_nothing() -> None:
    stop = GracefulStop()
    stop.query = FakeQuery()
    stop.request()
    with pytest.raises(StopRequested):
        stop.batch_starting()


def test_batches_run_normally_without_a_stop() -> None:
    stop = GracefulStop()
    query = stop.query = FakeQuery()
    for _ in range(3):
        stop.batch_starting()
        stop.batch_finished()
    assert not query.stopped.is_set()
    assert stop.stopping is False


def test_the_root_cause_of_a_query_failure_is_one_line() -> None:
    failure = RuntimeError(
        "[STREAM_FAILED] Query [id = 1] terminated with exception: An exception was raised by the Python Proxy.\n"
        "py4j.protocol.Py4JJavaError: An error occurred while calling o1.save.\n"
        "\tat org.apache.spark.Foo(Foo.scala:1)\n"
        "Caused by: org.apache.kafka.common.errors.TimeoutException: Topic customers-usa not present in metadata\n"
        "\tat org.apache.kafka.Bar(Bar.java:2)\n"
    )
    assert root_cause(failure) == (
        "org.apache.kafka.common.errors.TimeoutException: Topic customers-usa not present in metadata"
    )
    assert root_cause(RuntimeError("plain text")) == "plain text"
