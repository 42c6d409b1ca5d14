"""Producer pieces that need no service: settings, progress records, listing (moto)."""

from __future__ import annotations

import threading
import time

import pytest

from customer_pipeline.producer import config as producer_config
from customer_pipeline.producer.progress import DONE, EMPTY, READING, REJECTED, ObjectProgress, resume_row
from customer_pipeline.producer.service import FatalError, RateLimiter, Stopped, kafka_failure, retry
from customer_pipeline.settings import SettingsError, parse_override

MINIMAL = "[s3]\nbucket = customers\nprefix = incoming\n[kafka]\nbootstrap_servers = a:9092, b:9092\n"


def write(tmp_path, text):
    path = tmp_path / "producer.ini"
    path.write_text(text)
    return str(path)


def test_settings_defaults_and_prefix_as_folder(tmp_path):
    settings = producer_config.load(write(tmp_path, MINIMAL))
    assert settings.s3.prefix == "incoming/"
    assert settings.s3.uri == "s3://customers/incoming/"
    assert settings.kafka.topic == "customers-raw"
    assert settings.kafka.client_options()["bootstrap_servers"] == ["a:9092", "b:9092"]
    assert settings.transaction_records == 5000
    assert settings.rate_limit == 0.0
    assert settings.exit_when_idle is False
    assert settings.kafka.client == "kafka-python"


def test_overrides_win_over_the_file(tmp_path):
    settings = producer_config.load(write(tmp_path, MINIMAL),
                                    ["producer.rate_limit=250", "s3.prefix=", "producer.exit_when_idle=yes"])
    assert settings.rate_limit == 250.0
    assert settings.s3.prefix == ""
    assert settings.exit_when_idle is True
    assert producer_config.load(write(tmp_path, MINIMAL), ["kafka.client=confluent-kafka"]).kafka.client == \
        "confluent-kafka"


def test_batching_settings_reach_both_clients(tmp_path):
    from customer_pipeline.producer.confluent_client import client_config

    default = producer_config.load(write(tmp_path, MINIMAL)).kafka
    assert (default.compression, default.batch_size, default.linger_ms) == ("gzip", 1024 * 1024, 20)
    fast = producer_config.load(write(tmp_path, MINIMAL), ["kafka.client=confluent-kafka"]).kafka
    assert fast.compression == "none"
    kafka = producer_config.load(write(tmp_path, MINIMAL), [
        "kafka.client=confluent-kafka", "kafka.compression=lz4", "kafka.batch_size=65536", "kafka.linger_ms=5"]).kafka
    config = client_config(kafka.client_options(), "t", kafka.compression, kafka.batch_size, kafka.linger_ms)
    assert (config["compression.type"], config["batch.size"], config["linger.ms"]) == ("lz4", 65536, 5)


@pytest.mark.parametrize("override, message", [
    ("producer.transaction_records=zero", "setting producer.transaction_records in "),
    ("producer.transaction_records=0", "must be at least 1, not 0"),
    ("kafka.security_protocol=TLS", "must be one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL, not 'TLS'"),
    ("producer.exit_when_idle=maybe", "must be true or false"),
    ("s3.bucket=", "setting s3.bucket in "),
    ("kafka.client=librdkafka", "must be one of kafka-python, confluent-kafka, not 'librdkafka'"),
    ("kafka.compression=lz4", "lz4 needs client = confluent-kafka (with kafka-python: none, gzip)"),
    ("kafka.compression=brotli", "must be one of none, gzip, lz4, zstd, snappy, not 'brotli'"),
    ("kafka.batch_size=100", "must be at least 1024, not 100"),
])
def test_a_wrong_setting_is_named(tmp_path, override, message):
    with pytest.raises(SettingsError, match=None) as error:
        producer_config.load(write(tmp_path, MINIMAL), [override])
    assert message in str(error.value)


def test_secret_comes_from_the_named_environment_variable(tmp_path, monkeypatch):
    path = write(tmp_path, MINIMAL + "sasl_mechanism = PLAIN\nsasl_username = u\nsasl_password_env = KAFKA_PW\n")
    with pytest.raises(SettingsError) as error:
        producer_config.load(path)
    assert "names environment variable KAFKA_PW, which is not set" in str(error.value)
    monkeypatch.setenv("KAFKA_PW", "s3cret")
    options = producer_config.load(path).kafka.client_options()
    assert options["sasl_plain_password"] == "s3cret"


@pytest.mark.parametrize("overrides, message", [
    (["kafka.security_protocol=SASL_SSL"],
     "setting kafka.sasl_mechanism in %s must be one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 with SASL_SSL, not (none)"),
    (["kafka.security_protocol=SASL_PLAINTEXT", "kafka.sasl_mechanism=GSSAPI"], "SCRAM-SHA-512 with SASL_PLAINTEXT, not GSSAPI"),
    (["kafka.security_protocol=SASL_SSL", "kafka.sasl_mechanism=SCRAM-SHA-512"],
     "setting kafka.sasl_username in %s is empty: SASL_SSL needs the SASL user name"),
    (["kafka.security_protocol=SASL_SSL", "kafka.sasl_mechanism=SCRAM-SHA-512", "kafka.sasl_username=pipeline"],
     "setting kafka.sasl_password_env in %s is empty: SASL_SSL needs the environment variable holding the SASL password"),
    (["kafka.security_protocol=SSL", "kafka.ssl_cafile=/nonexistent/ca.pem"],
     "setting kafka.ssl_cafile in %s names /nonexistent/ca.pem, which does not exist"),
])
def test_an_incomplete_kafka_security_setting_is_named(tmp_path, overrides, message):
    path = write(tmp_path, MINIMAL)
    with pytest.raises(SettingsError) as error:
        producer_config.load(path, overrides)
    assert (message % path if "%s" in message else message) in str(error.value)


def test_sasl_ssl_settings_reach_both_clients(tmp_path, monkeypatch):
    from customer_pipeline.producer.confluent_client import client_config

    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "s3cret")
    kafka = producer_config.load(write(tmp_path, MINIMAL + (
        "security_protocol = SASL_SSL\nsasl_mechanism = SCRAM-SHA-512\nsasl_username = pipeline\n"
        "sasl_password_env = KAFKA_SASL_PASSWORD\nssl_cafile = %s\n" % ca))).kafka
    options = kafka.client_options()
    assert {key: options[key] for key in ("security_protocol", "sasl_mechanism", "sasl_plain_username",
                                          "sasl_plain_password", "ssl_cafile")} == {
        "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "pipeline",
        "sasl_plain_password": "s3cret", "ssl_cafile": str(ca)}
    config = client_config(options, "t", kafka.compression, kafka.batch_size, kafka.linger_ms)
    assert {key: config[key] for key in ("security.protocol", "sasl.mechanism", "sasl.username", "sasl.password",
                                         "ssl.ca.location")} == {
        "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "pipeline",
        "sasl.password": "s3cret", "ssl.ca.location": str(ca)}


def test_missing_file_and_bad_override(tmp_path):
    with pytest.raises(SettingsError) as error:
        producer_config.load(str(tmp_path / "nope.ini"))
    assert str(error.value) == "settings file %s does not exist" % (tmp_path / "nope.ini")
    with pytest.raises(SettingsError):
        parse_override("novalue")
    assert parse_override("a.b=c=d") == ("a", "b", "c=d")


def test_progress_round_trip_and_resume_row():
    record = ObjectProgress(etag='"abc"', last_row=1200, records=1199, state=READING)
    assert ObjectProgress.decode(record.encode()) == record
    assert resume_row(None, '"abc"') == 0
    assert resume_row(record, '"abc"') == 1200
    assert resume_row(record, '"new"') == 0  # overwritten key: a new object
    for state in (DONE, REJECTED, EMPTY):
        assert resume_row(ObjectProgress('"abc"', 5, 5, state), '"abc"') is None


def test_listing_returns_csv_objects_in_key_order():
    boto3 = pytest.importorskip("boto3")
    moto = pytest.importorskip("moto")
    from customer_pipeline.producer.s3_source import list_csv_objects, open_object

    with moto.mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="customers")
        for key in ["incoming/b.csv", "incoming/a.csv", "incoming/notes.txt", "incoming-old/c.csv",
                    "incoming/sub/c.csv", "other/d.csv"]:
            client.put_object(Bucket="customers", Key=key, Body=b"x")
        settings = producer_config.S3Settings("customers", "incoming/", None, "us-east-1", "path")
        listed = list_csv_objects(client, settings)
        assert [source.key for source in listed] == ["incoming/a.csv", "incoming/b.csv", "incoming/sub/c.csv"]
        assert listed[0].uri == "s3://customers/incoming/a.csv"
        assert open_object(client, listed[0]).read() == b"x"


def test_reading_an_overwritten_object_fails_as_changed():
    boto3 = pytest.importorskip("boto3")
    moto = pytest.importorskip("moto")
    from customer_pipeline.producer.s3_source import ObjectChangedError, list_csv_objects, open_object

    with moto.mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="customers")
        client.put_object(Bucket="customers", Key="in/a.csv", Body=b"old")
        settings = producer_config.S3Settings("customers", "in/", None, "us-east-1", "path")
        (listed,) = list_csv_objects(client, settings)
        client.put_object(Bucket="customers", Key="in/a.csv", Body=b"new content")
        with pytest.raises(ObjectChangedError):
            open_object(client, listed)


def test_retry_gives_up_with_the_name_of_what_failed():
    settings = producer_config.load(None, ["s3.bucket=b", "kafka.bootstrap_servers=x:1",
                                           "producer.retry_attempts=3", "producer.retry_max_backoff_seconds=0"])
    calls = []

    def failing():
        calls.append(1)
        raise ConnectionError("refused")

    stop = threading.Event()
    with pytest.raises(FatalError) as error:
        retry("connecting to Kafka at x:1", failing, settings, stop)
    assert str(error.value) == "connecting to Kafka at x:1 failed after 3 attempt(s): refused"
    assert len(calls) == 3


def test_a_stop_request_ends_a_blocked_call_at_once_and_between_attempts():
    """SIGTERM while a client waits out its timeout (a broker that never answers) exits now,
    not when the timeout ends: the call had nothing open."""
    settings = producer_config.load(None, ["s3.bucket=b", "kafka.bootstrap_servers=x:1",
                                           "producer.retry_attempts=5", "producer.retry_max_backoff_seconds=30"])
    stop = threading.Event()
    released = threading.Event()
    threading.Timer(0.3, stop.set).start()
    started = time.monotonic()
    with pytest.raises(Stopped):
        retry("connecting to Kafka at x:1", lambda: released.wait(30), settings, stop)
    blocked_for = time.monotonic() - started
    released.set()
    assert blocked_for < 5, blocked_for
    # Between attempts: the back-off's wait ends at the request too.
    stop.clear()
    threading.Timer(0.3, stop.set).start()
    started = time.monotonic()
    with pytest.raises(Stopped):
        retry("listing s3://b/", lambda: (_ for _ in ()).throw(ConnectionError("refused")), settings, stop)
    assert time.monotonic() - started < 5
    # A call that returns is not given up, stop request or not.
    assert retry("listing s3://b/", lambda: 42, settings, stop) == 42


def test_a_failure_that_points_at_a_setting_names_it():
    """Bad settings (issue 13): the one error line says which setting to look at."""
    boto3 = pytest.importorskip("boto3")
    moto = pytest.importorskip("moto")
    from botocore.exceptions import EndpointConnectionError

    from customer_pipeline.producer.s3_source import list_csv_objects

    settings = producer_config.load(None, ["s3.bucket=b", "kafka.bootstrap_servers=x:1",
                                           "producer.retry_attempts=2", "producer.retry_max_backoff_seconds=0"])
    stop = threading.Event()
    with moto.mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        missing = producer_config.S3Settings("no-such-bucket", "in/", None, "us-east-1", "path")
        with pytest.raises(FatalError) as error:
            retry("listing s3://no-such-bucket/in/", lambda: list_csv_objects(client, missing), settings, stop,
                  check="check [s3] bucket, prefix and endpoint_url")
    # Fatal at once (no second attempt), and the error's own setting rather than the general one.
    assert str(error.value).startswith("listing s3://no-such-bucket/in/ failed after 1 attempt(s): ")
    assert str(error.value).endswith("; check [s3] bucket (customer_producer_s3_bucket)")

    def unreachable():
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9")

    with pytest.raises(FatalError) as error:
        retry("listing s3://b/in/", unreachable, settings, stop, check="check [s3] bucket, prefix and endpoint_url")
    assert str(error.value) == ('listing s3://b/in/ failed after 2 attempt(s): Could not connect to the endpoint '
                                'URL: "http://127.0.0.1:9"; check [s3] endpoint_url (customer_producer_s3_endpoint_url)')

    def refused():
        raise ConnectionError("refused")

    with pytest.raises(FatalError) as error:
        retry("connecting to Kafka at x:1", refused, settings, stop, check="check [kafka] bootstrap_servers")
    assert str(error.value) == "connecting to Kafka at x:1 failed after 2 attempt(s): refused; check [kafka] bootstrap_servers"


def test_a_failed_send_names_the_brokers_error_inside_kafka_pythons_wrapper():
    errors = pytest.importorskip("kafka.errors")
    # What kafka-python 3.0.12 raises from send() once a batch met UNKNOWN_PRODUCER_ID (Kafka 1.1.1 did).
    wrapped = errors.KafkaError("Cannot perform send because at least one previous transactional or idempotent "
                                "request has failed with errors.", errors.UnknownProducerIdError(None))
    assert kafka_failure("publishing to", wrapped, "b:6667") == (
        "publishing to Kafka at b:6667 failed: [Error 59] UnknownProducerIdError (the brokers no longer know this "
        "producer: it was idle longer than their transactional.id.expiration.ms, or its last records were "
        "deleted); a transactional producer cannot go on after it on brokers before Kafka 2.5; exiting, the "
        "restarted producer resumes after the last committed row")
    # Any other failure: its own text, no hint.
    assert kafka_failure("committing to", errors.KafkaTimeoutError("Timeout after waiting for 60000 ms."), "b:1") == (
        "committing to Kafka at b:1 failed: KafkaTimeoutError: Timeout after waiting for 60000 ms.; exiting, the "
        "restarted producer resumes after the last committed row")


def test_rate_limiter_spaces_records():
    import time

    limiter = RateLimiter(200.0, threading.Event())
    started = time.monotonic()
    for _ in range(41):
        limiter.wait()
    assert time.monotonic() - started >= 0.19
