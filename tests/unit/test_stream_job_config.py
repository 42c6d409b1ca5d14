"""The Spark job's configuration file and its command line (no Spark needed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from customer_pipeline.stream.config import ConfigError, StreamConfig, load_config

ROOT = Path(__file__).resolve().parents[2]

FULL = """\
[kafka]
bootstrap_servers = broker-1:9093,broker-2:9093
raw_topic = customers-raw
usa_topic = customers-usa
alerts_topic = customers-alerts
starting_offsets = earliest
max_offsets_per_trigger = 5000
fail_on_data_loss = true

[kafka_options]
security.protocol = SASL_PLAINTEXT
sasl.mechanism = SCRAM-SHA-512
sasl.jaas.config = org.apache.kafka.common.security.scram.ScramLoginModule required username="spark" password="${KAFKA_PASSWORD}";

[hdfs]
usa_path = /user/maria_dev/customers_usa
alerts_path = /user/maria_dev/customers_alerts
checkpoint_location = /user/maria_dev/checkpoints/customer-stream
output_format = parquet

[job]
app_name = customer-stream
trigger_interval = 30 seconds
available_now = false
target_country = USA
log_level = WARN

[spark_conf]
spark.jars = /opt/spark/jars/kafka/spark-sql-kafka-0-10_2.12-3.5.7.jar
"""


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "stream-job.ini"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_a_full_file_reads_into_typed_settings(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, FULL), environ={"KAFKA_PASSWORD": "s3cr%t"})
    assert config.bootstrap_servers == "broker-1:9093,broker-2:9093"
    assert config.max_offsets_per_trigger == 5000
    assert config.trigger_interval == "30 seconds"
    assert config.fail_on_data_loss is True
    assert config.spark_conf == (("spark.jars", "/opt/spark/jars/kafka/spark-sql-kafka-0-10_2.12-3.5.7.jar"),)
    source = config.kafka_source_options()
    assert source["kafka.isolation.level"] == "read_committed"
    assert source["kafka.security.protocol"] == "SASL_PLAINTEXT"
    assert source["kafka.sasl.jaas.config"].endswith('password="s3cr%t";')
    assert source["subscribe"] == "customers-raw"
    assert source["failOnDataLoss"] == "true"
    assert source["maxOffsetsPerTrigger"] == "5000"
    assert config.kafka_sink_options() == {
        "kafka.bootstrap.servers": "broker-1:9093,broker-2:9093",
        "kafka.sasl.jaas.config": source["kafka.sasl.jaas.config"],
        "kafka.sasl.mechanism": "SCRAM-SHA-512",
        "kafka.security.protocol": "SASL_PLAINTEXT",
        "kafka.linger.ms": "20",
        "kafka.batch.size": "1048576",
    }


def test_defaults_are_the_contract_and_the_safe_choices(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "[kafka]\nbootstrap_servers = 127.0.0.1:9092\n"))
    assert config == StreamConfig(bootstrap_servers="127.0.0.1:9092")
    assert (config.raw_topic, config.usa_topic, config.alerts_topic) == (
        "customers-raw",
        "customers-usa",
        "customers-alerts",
    )
    assert (config.usa_path, config.alerts_path, config.checkpoint_location) == (
        "/user/maria_dev/customers_usa",
        "/user/maria_dev/customers_alerts",
        "/user/maria_dev/checkpoints/customer-stream",
    )
    assert (config.starting_offsets, config.fail_on_data_loss, config.output_format, config.target_country) == (
        "earliest",
        True,
        "parquet",
        "USA",
    )


def test_overrides_win_and_may_name_dotted_kafka_options(tmp_path: Path) -> None:
    config = load_config(
        write(tmp_path, FULL),
        ["hdfs.output_format=json", "job.available_now=yes", "kafka_options.security.protocol=SASL_SSL"],
        environ={"KAFKA_PASSWORD": "x"},
    )
    assert (config.output_format, config.available_now) == ("json", True)
    assert dict(config.kafka_options)["security.protocol"] == "SASL_SSL"


def test_delta_tables_compact_at_deltas_own_thresholds_unless_set(tmp_path: Path) -> None:
    path = write(tmp_path, "[kafka]\nbootstrap_servers = 127.0.0.1:9092\n[hdfs]\noutput_format = delta\n")
    config = load_config(path)
    assert (config.output_format, config.compact_min_files, config.compact_target_bytes) == ("delta", 50, 134217728)
    config = load_config(path, ["hdfs.compact_min_files=4", "hdfs.compact_target_bytes=1048576"])
    assert (config.compact_min_files, config.compact_target_bytes) == (4, 1048576)
    assert (config.vacuum_retention_hours, config.vacuum_every_minutes) == (168, 60)
    config = load_config(path, ["hdfs.vacuum_retention_hours=0", "hdfs.vacuum_every_minutes=0"])
    assert (config.vacuum_retention_hours, config.vacuum_every_minutes) == (0, 0)


def test_min_partitions_is_twice_the_cores_unless_set(tmp_path: Path) -> None:
    path = write(tmp_path, "[kafka]\nbootstrap_servers = 127.0.0.1:9092\n")
    assert load_config(path).source_min_partitions(cores=2) == 4
    assert load_config(path, ["kafka.min_partitions=auto"]).source_min_partitions(cores=8) == 16
    assert load_config(path, ["kafka.min_partitions=3"]).source_min_partitions(cores=2) == 3
    # A master whose parallelism reads 0 still gets tasks.
    assert load_config(path).source_min_partitions(cores=0) == 2


@pytest.mark.parametrize(
    "text, overrides, message",
    [
        ("[kafka]\n", [], "[kafka] bootstrap_servers: required"),
        (FULL, ["hdfs.output_format=orc"], "[hdfs] output_format: expected one of parquet, delta, json, got 'orc'"),
        (FULL, ["kafka.max_offsets_per_trigger=-3"], "[kafka] max_offsets_per_trigger: expected a positive"),
        (FULL, ["kafka.min_partitions=0"], "[kafka] min_partitions: expected a positive whole number or 'auto'"),
        (FULL, ["hdfs.compact_min_files=auto"], "[hdfs] compact_min_files: expected a positive whole number, got 'auto'"),
        (FULL, ["hdfs.vacuum_retention_hours=-1"], "[hdfs] vacuum_retention_hours: expected a whole number (0 or more)"),
        (FULL, ["hdfs.compact_target_bytes=0"], "[hdfs] compact_target_bytes: expected a positive whole number, got '0'"),
        (FULL, ["kafka.fail_on_data_loss=maybe"], "[kafka] fail_on_data_loss: expected true or false"),
        (FULL, ["job.trigger_interval=soon"], "[job] trigger_interval: expected a duration"),
        (FULL, ["job.target_country= "], "[job] target_country: must not be empty"),
        (FULL, ["job.trigger=1"], "[job] trigger: unknown setting"),
        (FULL, ["jobs.x=1"], "[jobs] x: unknown section [jobs]"),
        (FULL, ["kafka_options.isolation.level=read_uncommitted"], "[kafka_options] isolation.level: not allowed"),
        (FULL, ["spark_conf.jars=x"], "[spark_conf] jars: not a Spark property name"),
        (FULL, ["hdfs.alerts_path=/user/maria_dev/customers_usa/"], "[hdfs] alerts_path: must differ"),
        (FULL, ["output_format=json"], "expected section.key=value"),
    ],
)
def test_a_bad_setting_is_named_with_its_file(tmp_path: Path, text: str, overrides: list, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        load_config(path, overrides, environ={"KAFKA_PASSWORD": "x"})
    assert message in str(raised.value)
    if "--set" not in str(raised.value):
        assert str(raised.value).startswith(path)


def test_a_missing_environment_variable_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[kafka_options\] sasl.jaas.config: environment variable KAFKA_PASSWORD is not set"):
        load_config(write(tmp_path, FULL), environ={})


def test_the_command_line_reports_a_bad_file_in_one_line_with_exit_code_2(tmp_path: Path) -> None:
    path = write(tmp_path, "[kafka]\nbootstrap_servers = b:9092\n[hdfs]\noutput_format = avro\n")
    result = subprocess.run(
        [sys.executable, "-m", "customer_pipeline.stream.job", "--config", path],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr == f"stream_job: error: {path}: [hdfs] output_format: expected one of parquet, delta, json, got 'avro'\n"
    assert result.stdout == ""


def test_an_unreadable_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the configuration file"):
        load_config(str(tmp_path / "absent.ini"))
