"""The Spark job's configuration: one INI file (templated by Ansible), parsed here only.

    [kafka]
    bootstrap_servers = 127.0.0.1:9092
    raw_topic = customers-raw
    ...
    [kafka_options]
    # copied as kafka.<name> to the Kafka source and sink, e.g. for SASL
    security.protocol = SASL_PLAINTEXT
    sasl.jaas.config = ... password="${KAFKA_PASSWORD}";

`${NAME}` in a value is replaced by the environment variable NAME, so secrets come from
the unit's EnvironmentFile and never stand in the file or on a command line. Command
line overrides are `--set section.key=value` (not for secrets: command lines are
visible to every user of the node). Reading the file, the overrides and the environment
is shared with the producer (`customer_pipeline.settings`); this module has only the
job's settings and their checks.
Every problem raises `ConfigError`, whose message names the setting and the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, Mapping, Optional, Tuple

from customer_pipeline.contract import rules as contract
from customer_pipeline.settings import Settings, SettingsError, Wording, parse_bool

OUTPUT_FORMATS = ("parquet", "delta", "json")
STARTING_OFFSETS = ("earliest", "latest")
# Kafka producer settings of the sink unless [kafka_options] sets them.
SINK_DEFAULTS = {"kafka.linger.ms": "20", "kafka.batch.size": str(1 << 20)}
# Options the job sets itself: an override would break its guarantees.
RESERVED_KAFKA_OPTIONS = frozenset({"bootstrap.servers", "isolation.level"})
_INTERVAL = re.compile(r"[0-9]+ *(milliseconds?|seconds?|minutes?|hours?)")
_SPARK_NAME = re.compile(r"spark\.[A-Za-z0-9_.\-]+")

# The job's name for a wrong setting; its messages start with the file and the setting.
ConfigError = SettingsError
WORDING = Wording(
    setting="{source}: [{section}] {key}: {problem}",
    missing_file="{path}: cannot read the configuration file: {reason}",
    unreadable_file="{path}: cannot read the configuration file: {reason}",
    invalid_file="{path}: not a valid INI file: {error}",
    bad_override="--set {text!r}: expected section.key=value, e.g. kafka.raw_topic=customers-raw",
)


@dataclass(frozen=True)
class StreamConfig:
    """Typed settings of the job; defaults are the contract's and the safe ones."""

    bootstrap_servers: str
    raw_topic: str = "customers-raw"
    usa_topic: str = "customers-usa"
    alerts_topic: str = "customers-alerts"
    # Extra Kafka client settings, without the `kafka.` prefix, for source and sink.
    kafka_options: Tuple[Tuple[str, str], ...] = ()
    starting_offsets: str = "earliest"
    # At the default 10 s trigger a backlog drains at most this many records per 10 s: 100,000
    # held the job to 10,000 rows/s, half what it does on the sandbox (docs/benchmarks.md).
    max_offsets_per_trigger: Optional[int] = 250_000
    # Spark partitions a micro-batch is read into at least (the Kafka source's
    # minPartitions); None: twice the job's cores (`source_min_partitions`).
    min_partitions: Optional[int] = None
    fail_on_data_loss: bool = True
    usa_path: str = "/user/maria_dev/customers_usa"
    alerts_path: str = "/user/maria_dev/customers_alerts"
    checkpoint_location: str = "/user/maria_dev/checkpoints/customer-stream"
    output_format: str = "parquet"
    # Compaction into files of about the target. Delta tables: auto compaction once this
    # many files are smaller than half the target (Delta's own defaults). Plain datasets: a
    # closed day's partition once it holds this many files (`stream.partition_compaction`).
    compact_min_files: int = 50
    compact_target_bytes: int = 128 << 20
    # Delta tables: files no version of the last `vacuum_retention_hours` reads are deleted
    # every `vacuum_every_minutes` (0: never).
    vacuum_retention_hours: int = 168
    vacuum_every_minutes: int = 60
    app_name: str = "customer-stream"
    trigger_interval: str = "10 seconds"
    available_now: bool = False
    target_country: str = contract.DEFAULT_TARGET_COUNTRY
    log_level: str = "WARN"
    # Extra Spark properties given to the session builder, e.g. spark.jars when the job
    # starts with `python -m` (pyspark then launches the JVM with them). Under
    # spark-submit the JVM already runs: launch-time ones (--jars) go on its command line.
    spark_conf: Tuple[Tuple[str, str], ...] = field(default=())

    def kafka_source_options(self) -> Dict[str, str]:
        """Options of Spark's Kafka source (`spark.readStream.format('kafka')`)."""
        options = self._kafka_client_options()
        options.update(
            {
                "subscribe": self.raw_topic,
                # The producer writes in transactions: read only committed records.
                "kafka.isolation.level": "read_committed",
                "startingOffsets": self.starting_offsets,
                "failOnDataLoss": str(self.fail_on_data_loss).lower(),
            }
        )
        if self.max_offsets_per_trigger is not None:
            options["maxOffsetsPerTrigger"] = str(self.max_offsets_per_trigger)
        return options

    def source_min_partitions(self, cores: int) -> int:
        """minPartitions of the Kafka source for a job of `cores` cores.

        Spark reads one task per Kafka partition unless told otherwise: three partitions
        on two cores left one core idle for the last third of every batch. Twice the
        cores spreads the work evenly (measured on the sandbox: classifying 200,000 rows
        took 3.3-3.8 s against 5.5 s). A topic with more partitions keeps one task each."""
        return self.min_partitions if self.min_partitions is not None else 2 * max(cores, 1)

    def kafka_sink_options(self) -> Dict[str, str]:
        """Options of Spark's Kafka sink (`df.write.format('kafka')`); topic per row.

        Larger batches than the client's defaults (16 KiB, sent at once): a batch's
        120,000 output messages reached the broker in 1.4 s instead of 2.5 s on the
        sandbox. [kafka_options] can set either otherwise."""
        return {**SINK_DEFAULTS, **self._kafka_client_options()}

    def _kafka_client_options(self) -> Dict[str, str]:
        options = {f"kafka.{name}": value for name, value in self.kafka_options}
        options["kafka.bootstrap.servers"] = self.bootstrap_servers
        return options


# (section, key) -> (StreamConfig field, parser). Sections [kafka_options] and
# [spark_conf] are open-ended and handled apart.
def _text(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    return value


_bool = parse_bool


def _whole_number(value: str) -> int:
    if not value.isascii() or not value.isdigit():
        raise ValueError(f"expected a whole number (0 or more), got {value!r}")
    return int(value)


def _positive_int(value: str) -> int:
    if not value.isascii() or not value.isdigit() or int(value) < 1:
        raise ValueError(f"expected a positive whole number, got {value!r}")
    return int(value)


def _positive_int_or(word: str, *aliases: str) -> Callable[[str], Optional[int]]:
    """A parser of a positive whole number, or of `word` (or an alias) meaning None."""

    def parse(value: str) -> Optional[int]:
        if value.lower() in (word, *aliases):
            return None
        try:
            return _positive_int(value)
        except ValueError:
            raise ValueError(f"expected a positive whole number or {word!r}, got {value!r}") from None

    return parse


def _choice(choices: Iterable[str]) -> Callable[[str], str]:
    allowed = tuple(choices)

    def parse(value: str) -> str:
        if value.lower() not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}, got {value!r}")
        return value.lower()

    return parse


def _interval(value: str) -> str:
    if not _INTERVAL.fullmatch(value):
        raise ValueError(f"expected a duration such as '10 seconds' or '500 milliseconds', got {value!r}")
    return value


def _starting_offsets(value: str) -> str:
    # earliest, latest, or Spark's JSON form {"topic":{"0":23}} for a hand-picked start.
    if value.lower() in STARTING_OFFSETS:
        return value.lower()
    if value.startswith("{") and value.endswith("}"):
        return value
    raise ValueError(f"expected earliest, latest or a JSON offset map, got {value!r}")


def _target_country(value: str) -> str:
    if contract.present(value) is None:
        raise ValueError("must not be empty")
    return value


def _log_level(value: str) -> str:
    levels = ("ALL", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "OFF", "TRACE")
    if value.upper() not in levels:
        raise ValueError(f"expected one of {', '.join(levels)}, got {value!r}")
    return value.upper()


SETTINGS: Dict[Tuple[str, str], Tuple[str, Callable[[str], object]]] = {
    ("kafka", "bootstrap_servers"): ("bootstrap_servers", _text),
    ("kafka", "raw_topic"): ("raw_topic", _text),
    ("kafka", "usa_topic"): ("usa_topic", _text),
    ("kafka", "alerts_topic"): ("alerts_topic", _text),
    ("kafka", "starting_offsets"): ("starting_offsets", _starting_offsets),
    ("kafka", "max_offsets_per_trigger"): ("max_offsets_per_trigger", _positive_int_or("unlimited", "", "none")),
    ("kafka", "min_partitions"): ("min_partitions", _positive_int_or("auto")),
    ("kafka", "fail_on_data_loss"): ("fail_on_data_loss", _bool),
    ("hdfs", "usa_path"): ("usa_path", _text),
    ("hdfs", "alerts_path"): ("alerts_path", _text),
    ("hdfs", "checkpoint_location"): ("checkpoint_location", _text),
    ("hdfs", "output_format"): ("output_format", _choice(OUTPUT_FORMATS)),
    ("hdfs", "compact_min_files"): ("compact_min_files", _positive_int),
    ("hdfs", "compact_target_bytes"): ("compact_target_bytes", _positive_int),
    ("hdfs", "vacuum_retention_hours"): ("vacuum_retention_hours", _whole_number),
    ("hdfs", "vacuum_every_minutes"): ("vacuum_every_minutes", _whole_number),
    ("job", "app_name"): ("app_name", _text),
    ("job", "trigger_interval"): ("trigger_interval", _interval),
    ("job", "available_now"): ("available_now", _bool),
    ("job", "target_country"): ("target_country", _target_country),
    ("job", "log_level"): ("log_level", _log_level),
}
OPEN_SECTIONS = ("kafka_options", "spark_conf")


def load_config(
    path: str,
    overrides: Iterable[str] = (),
    environ: Optional[Mapping[str, str]] = None,
) -> StreamConfig:
    """Read the INI file at `path`, apply `--set` overrides, check every setting."""
    settings = Settings(path, overrides, WORDING, environ)
    fields: Dict[str, object] = {}
    kafka_options: Dict[str, str] = {}
    spark_conf: Dict[str, str] = {}
    for section, key, raw in settings.items():
        value = settings.expand(section, key, raw)
        if section == "kafka_options":
            if key in RESERVED_KAFKA_OPTIONS or key.startswith("kafka."):
                raise settings.error(section, key, "not allowed here (the job sets it; write names without 'kafka.')")
            kafka_options[key] = value
        elif section == "spark_conf":
            if not _SPARK_NAME.fullmatch(key):
                raise settings.error(section, key, "not a Spark property name (spark.*)")
            spark_conf[key] = value
        elif (section, key) in SETTINGS:
            name, parse = SETTINGS[(section, key)]
            fields[name] = settings.convert(section, key, value, parse)
        else:
            known = sorted({s for s, _ in SETTINGS} | set(OPEN_SECTIONS))
            if section not in known:
                raise settings.error(section, key, f"unknown section [{section}], expected one of {', '.join(known)}")
            raise settings.error(section, key, "unknown setting")
    if "bootstrap_servers" not in fields:
        raise settings.error("kafka", "bootstrap_servers", "required, e.g. bootstrap_servers = 127.0.0.1:9092")
    config = StreamConfig(
        kafka_options=tuple(sorted(kafka_options.items())),
        spark_conf=tuple(sorted(spark_conf.items())),
        **fields,  # type: ignore[arg-type]
    )
    paths = {"usa_path": config.usa_path, "alerts_path": config.alerts_path}
    if config.usa_path.rstrip("/") == config.alerts_path.rstrip("/"):
        raise settings.error("hdfs", "alerts_path", f"must differ from usa_path ({paths['usa_path']})")
    if config.usa_topic == config.alerts_topic or config.raw_topic in (config.usa_topic, config.alerts_topic):
        raise settings.error("kafka", "usa_topic/alerts_topic", "raw, usa and alerts topics must all differ")
    return config
