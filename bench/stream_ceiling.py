"""The Spark job's ceiling on this machine: one plain batch job, same rules, same two datasets.

    spark-submit ... bench/stream_ceiling.py --config stream.ini --set kafka.raw_topic=T \
        --set hdfs.usa_path=P --set hdfs.alerts_path=Q

Run on the node by bench/stream_job.py with the deployed job's spark-submit line (same
jars, same package, same master and memory). It reads the whole topic once as a batch
(read_committed), classifies it with the job's own functions, and writes the USA and
alerts rows as two plain Parquet datasets: no micro-batches, no exactly-once commits, no
topics. It prints one line, `ceiling: R rows, usa U, alerts A in S s`, timed from the read
to the last write (the JVM's start is not counted, as it is not in the job's batches).
"""

from __future__ import annotations

import sys
import time

from pyspark.sql import functions as F

from customer_pipeline.stream import rules as spark_rules
from customer_pipeline.stream.config import load_config
from customer_pipeline.stream.job import alert_rows, build_session, classify, parse_args, parse_raw, usa_rows


def main() -> int:
    args = parse_args(sys.argv[1:])
    config = load_config(args.config, args.set)
    spark = build_session(config)
    options = {name: value for name, value in config.kafka_source_options().items()
               if name not in ("maxOffsetsPerTrigger", "startingOffsets")}
    started = time.monotonic()
    messages = (spark.read.format("kafka").options(**options)
                .option("startingOffsets", "earliest").option("endingOffsets", "latest").load())
    classified = classify(parse_raw(messages), config.target_country).persist()
    counts = {row[0]: row[1] for row in classified.groupBy(spark_rules.ROUTE_COLUMN).count().collect()}
    usa_rows(classified, config.target_country).write.mode("overwrite").parquet(config.usa_path)
    alert_rows(classified).write.mode("overwrite").parquet(config.alerts_path)
    seconds = time.monotonic() - started
    total = classified.select(F.count(F.lit(1))).first()[0]
    print("ceiling: %d rows, usa %d, alerts %d in %.3f s" % (
        total, counts.get("usa", 0), counts.get("alerts", 0), seconds), flush=True)
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
