"""Fixtures of the unit tests."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Iterator

import pytest

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    """A local Spark session per module that asks for one (pyspark imported only then),
    with the job's required SQL settings (UTC...)."""
    from pyspark.sql import SparkSession

    from customer_pipeline.stream import rules as spark_rules

    # Loopback without asking the JVM for this host's address first: spark-submit fails to start
    # where the host name does not resolve (a fresh container, a minimal image).
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    session = (
        SparkSession.builder.master("local[2]")
        .appName("unit-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    for name, value in spark_rules.REQUIRED_SQL_CONF.items():
        session.conf.set(name, value)
    yield session
    session.stop()
