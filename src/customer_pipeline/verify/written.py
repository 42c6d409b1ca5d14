"""verify.yml's view of the HDFS datasets, run on a node with spark-submit.

    spark-submit --py-files customer_pipeline.zip run_verify_written.py --config stream.ini [--expected FILE]

Reads the USA and alerts datasets the job writes and prints one JSON line, prefixed
`VERIFY_WRITTEN ` (Spark logs around it): rows and duplicated record ids per
`source_uri` and dataset, those of the object's current version (`--expected`) apart from
those of earlier versions. Duplicates count rows beyond the first of each record_id.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Dict, List, Optional

from customer_pipeline.settings import EXIT_BAD_SETTINGS
from customer_pipeline.stream.config import ConfigError, load_config

MARKER = "VERIFY_WRITTEN "


def dataset_counts(spark: Any, path: str, output_format: str,
                   versions: Optional[Dict[str, str]] = None) -> Dict[str, Dict[str, int]]:
    """Rows and duplicated record ids per source_uri, split by version: `rows` and `duplicates`
    count the rows of the object's current version (its ETag in `versions`, uri -> ETag), and
    `earlier_rows` and `earlier_duplicates` those of versions it had before (CONTRACT.md: a key
    overwritten with new content is a new object; the rows of the old one stay). A row is of the
    current version when its record_id is the one that version gives its source_row; a uri
    `versions` does not name counts as current throughout."""
    from pyspark.sql import functions as F
    from pyspark.sql.utils import AnalysisException

    from customer_pipeline.contract.rules import RECORD_ID_HEX_CHARS, record_id_prefix

    try:
        frame = spark.read.format(output_format).load(path)
    except AnalysisException:
        return {}  # no dataset yet (nothing written, or reset)
    if "source_uri" not in frame.columns:
        return {}
    if versions and "source_row" in frame.columns:
        # The id's canonical text up to the row is computed here, by the function the producer
        # uses; Spark only appends the row and hashes (sha2 of the UTF-8 string), natively.
        prefixes = spark.createDataFrame(
            [(uri, record_id_prefix(uri, etag)) for uri, etag in sorted(versions.items())],
            "source_uri string, id_prefix string")
        frame = frame.select("source_uri", "source_row", "record_id").join(F.broadcast(prefixes), "source_uri", "left")
        own_id = F.substring(F.sha2(F.concat(F.col("id_prefix"), F.col("source_row").cast("string"), F.lit("]")), 256),
                             1, RECORD_ID_HEX_CHARS)
        current = F.col("id_prefix").isNull() | (F.col("record_id") == own_id)
    else:
        current = F.lit(True)
    rows = (frame.withColumn("current", current).groupBy("source_uri", "current")
            .agg(F.count(F.lit(1)).alias("rows"), F.countDistinct("record_id").alias("ids"))
            .collect())
    counts: Dict[str, Dict[str, int]] = {}
    for row in rows:
        item = counts.setdefault(row["source_uri"], {"rows": 0, "duplicates": 0, "earlier_rows": 0,
                                                     "earlier_duplicates": 0})
        prefix = "" if row["current"] else "earlier_"
        item[prefix + "rows"] = int(row["rows"])
        item[prefix + "duplicates"] = int(row["rows"] - row["ids"])
    return counts


def read_versions(path: Optional[str]) -> Dict[str, str]:
    """uri -> ETag of each object the producer knows, from verify.source's `expected` JSON."""
    if not path:
        return {}
    with open(path, encoding="utf-8") as handle:
        objects = json.load(handle).get("objects", [])
    return {item["uri"]: item["etag"] for item in objects if item.get("etag")}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="verify_written", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--expected", help="verify.source expected's JSON: the current version of each object")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_SETTINGS
    versions = read_versions(args.expected)
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("customer-pipeline-verify")
    if config.output_format == "delta":
        # Delta tables are read through their log (the committed versions), never as files.
        from customer_pipeline.stream.delta_commit import SESSION_CONF

        for name, value in SESSION_CONF.items():
            builder = builder.config(name, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    try:
        result = {
            "usa": dataset_counts(spark, config.usa_path, config.output_format, versions),
            "alerts": dataset_counts(spark, config.alerts_path, config.output_format, versions),
        }
    finally:
        spark.stop()
    print(MARKER + json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
