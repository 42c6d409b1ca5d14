"""Spark smoke test, run with spark-submit by the spark role.

Counts a range in the configured master and, when given a Hadoop URI (hdfs://host:port/path),
writes it as parquet there, reads it back and deletes it again.
"""
from __future__ import annotations

import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

ROWS = 100_000
GROUPS = 7


def main(argv: list[str]) -> int:
    spark = SparkSession.builder.appName("spark-smoke").getOrCreate()
    try:
        df = spark.range(ROWS)
        total = df.count()
        groups = df.groupBy((F.col("id") % GROUPS).alias("k")).count().count()
        if (total, groups) != (ROWS, GROUPS):
            print(f"spark-smoke: FAILED range count {total} rows, {groups} groups; expected {ROWS}, {GROUPS}")
            return 1
        print(
            f"spark-smoke: range count {total} rows, {groups} groups, Spark {spark.version},"
            f" master {spark.sparkContext.master}, timezone {spark.conf.get('spark.sql.session.timeZone')}"
        )
        if len(argv) > 1:
            uri = argv[1]
            df.write.mode("overwrite").parquet(uri)
            read_back = spark.read.parquet(uri).count()
            jvm = spark.sparkContext._jvm
            path = jvm.org.apache.hadoop.fs.Path(uri)
            path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).delete(path, True)
            if read_back != ROWS:
                print(f"spark-smoke: FAILED parquet round trip read {read_back} rows at {uri}; expected {ROWS}")
                return 1
            print(f"spark-smoke: parquet round trip {read_back} rows at {uri}, deleted")
        return 0
    finally:
        spark.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
