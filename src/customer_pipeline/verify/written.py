"""verify.yml's view of the HDFS datasets, run on a node with spark-submit.

    spark-submit --py-files customer_pipeline.zip run_verify_written.py --config stream.ini

Reads the USA and alerts datasets the job writes and prints one JSON line, prefixed
`VERIFY_WRITTEN ` (Spark logs around it): rows and duplicated record ids per
`source_uri` and dataset. Duplicates count rows beyond the first of each record_id.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Dict, List, Optional

from customer_pipeline.settings import EXIT_BAD_SETTINGS
from customer_pipeline.stream.config import ConfigError, load_config

MARKER = "VERIFY_WRITTEN "


def dataset_counts(spark: Any, path: str, output_format: str) -> Dict[str, Dict[str, int]]:
    from pyspark.sql import functions as F
    from pyspark.sql.utils import AnalysisException

    try:
        frame = spark.read.format(output_format).load(path)
    except AnalysisException:
        return {}  # no dataset yet (nothing written, or reset)
    if "source_uri" not in frame.columns:
        return {}
    rows = (frame.groupBy("source_uri")
            .agg(F.count(F.lit(1)).alias("rows"), F.countDistinct("record_id").alias("ids"))
            .collect())
    return {row["source_uri"]: {"rows": int(row["rows"]), "duplicates": int(row["rows"] - row["ids"])}
            for row in rows}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="verify_written", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_SETTINGS
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
            "usa": dataset_counts(spark, config.usa_path, config.output_format),
            "alerts": dataset_counts(spark, config.alerts_path, config.output_format),
        }
    finally:
        spark.stop()
    print(MARKER + json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
