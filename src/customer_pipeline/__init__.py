"""S3 -> Kafka -> Spark -> HDFS customer ingestion pipeline."""

from __future__ import annotations

__version__ = "0.1.0"
