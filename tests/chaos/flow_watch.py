"""Samples, once a second, how far the pipeline's two flows have come: the committed records in
customers-raw (the producer's transactions) and the records in customers-usa plus
customers-alerts (the job's micro-batches). The chaos run measures recovery from these: rows
flow again when both numbers grow again. A broker that does not answer gives a sample of None.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import List, Optional, Sequence

from chaos_plan import Sample

RAW = "customers-raw"
OUTPUTS = ("customers-usa", "customers-alerts")


class FlowWatch(threading.Thread):
    def __init__(self, bootstrap: str, interval: float = 1.0) -> None:
        super().__init__(name="flow-watch", daemon=True)
        self.bootstrap = bootstrap
        self.interval = interval
        self.samples: List[Sample] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.last_error = ""  # why the last sample was None, for a run that never gets one
        # kafka-python logs every refused connection while the broker is down: the run's own
        # table says when it was.
        logging.getLogger("kafka").setLevel(logging.CRITICAL)

    def _consumer(self):  # type: ignore[no-untyped-def]
        from kafka import KafkaConsumer

        # read_committed: end offsets are the last stable offsets, so an aborted or still open
        # transaction of the producer does not count as rows flowing.
        return KafkaConsumer(bootstrap_servers=self.bootstrap, isolation_level="read_committed",
                             request_timeout_ms=5000, reconnect_backoff_max_ms=1000, enable_auto_commit=False)

    def _totals(self, consumer, topics: Sequence[str]) -> int:  # type: ignore[no-untyped-def]
        from kafka import TopicPartition

        partitions = [TopicPartition(topic, number) for topic in topics
                      for number in sorted(consumer.partitions_for_topic(topic) or ())]
        if not partitions:
            raise RuntimeError("no partitions known for %s" % ", ".join(topics))
        return sum(consumer.end_offsets(partitions).values())

    def run(self) -> None:
        consumer = None
        while not self.stopping.is_set():
            at = time.monotonic()
            raw: Optional[int] = None
            out: Optional[int] = None
            try:
                if consumer is None:
                    consumer = self._consumer()
                raw = self._totals(consumer, [RAW])
                out = self._totals(consumer, OUTPUTS)
            except Exception as error:  # noqa: BLE001 - any failure of the broker is a sample of None
                self.last_error = "%s: %s" % (type(error).__name__, error)
                if consumer is not None:
                    try:
                        consumer.close()
                    except Exception:  # noqa: BLE001
                        pass
                consumer = None
            with self.lock:
                self.samples.append((at, raw, out))
            self.stopping.wait(max(0.0, self.interval - (time.monotonic() - at)))
        if consumer is not None:
            consumer.close()

    def snapshot(self) -> List[Sample]:
        with self.lock:
            return list(self.samples)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=30)
