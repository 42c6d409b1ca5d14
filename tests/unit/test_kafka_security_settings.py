"""The cluster's Kafka security settings (cluster_kafka_*) reach every Kafka client the pipeline
deploys: the producer's producer.ini, the Spark job's stream.ini and stream.env, the topics'
module. Rendered by Ansible's own templating from the roles' files, then read by the programs'
own configuration code, so what the role writes is what the program understands."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import pytest
import yaml
from role_templates import trusted

from customer_pipeline.producer import config as producer_config
from customer_pipeline.stream.config import load_config

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "scram-secret-0123456789"
SASL_SSL = {
    "cluster_kafka_security_protocol": "SASL_SSL",
    "cluster_kafka_sasl_mechanism": "SCRAM-SHA-512",
    "cluster_kafka_sasl_username": "pipeline",
    "cluster_kafka_sasl_password": PASSWORD,
    "cluster_kafka_ssl_cafile": "/etc/kafka/tls/ca.pem",
}
# What the roles' defaults read from the inventory besides the security settings.
INVENTORY = {
    "ansible_managed": "Ansible managed",
    "cluster_kafka_bootstrap_servers": "node1:9094",
    "cluster_hdfs_uri": "hdfs://node1:8020",
    "cluster_hdfs_user": "maria_dev",
    "cluster_hdfs_user_dir": "/user/maria_dev",
    "cluster_spark_submit": "/usr/bin/spark-submit",
    "cluster_s3_endpoint_url": "http://node1:8333",
    "cluster_s3_region": "us-east-1",
    "cluster_s3_bucket": "customers",
    "cluster_s3_prefix": "incoming/",
    "cluster_s3_access_key_id": "AKIAEXAMPLE",
    "cluster_s3_secret_access_key": "s3-secret",
    "cluster_yarn_resourcemanager_webapp": "",
    "pipeline_home": "/opt/customer-pipeline",
    "pipeline_jars_dir": "/opt/customer-pipeline/jars",
    "pipeline_delta_jars_dir": "/opt/customer-pipeline/jars-delta",
    "pipeline_producer_venv": "/opt/customer-pipeline/producer/venv",
    "pipeline_stream_app_dir": "/opt/customer-pipeline/stream",
    "pipeline_conf_dir": "/etc/customer-pipeline",
    "pipeline_topic_raw": "customers-raw",
    "pipeline_topic_usa": "customers-usa",
    "pipeline_topic_alerts": "customers-alerts",
    "pipeline_topic_progress": "customers-raw-progress",
    "pipeline_hdfs_usa_path": "/user/maria_dev/customers_usa",
    "pipeline_hdfs_alerts_path": "/user/maria_dev/customers_alerts",
    "pipeline_checkpoint_location": "/user/maria_dev/checkpoints/customer-stream",
    "pipeline_target_country": "USA",
    "groups": {"customer_producers": ["node1"], "customer_stream_gateway": ["node1"]},
    "inventory_hostname": "node1",
    "pipeline_python_with_confluent_kafka": False,
}


class Role:
    """A role's defaults and vars over an inventory, templated as a play would."""

    def __init__(self, name: str, inventory: Dict[str, Any]) -> None:
        from ansible.parsing.dataloader import DataLoader

        self.folder = ROOT / "roles" / name
        self.loader = DataLoader()
        self.variables: Dict[str, Any] = dict(INVENTORY)
        for part in ("defaults", "vars"):
            path = self.folder / part / "main.yml"
            if path.exists():
                self.variables.update(trusted(yaml.safe_load(path.read_text())))
        self.variables.update(inventory)

    def value(self, expression: Any) -> Any:
        from ansible.template import Templar

        return Templar(loader=self.loader, variables=self.variables).template(trusted(expression))

    def render(self, template: str) -> str:
        return str(self.value((self.folder / "templates" / template).read_text()))


def test_plaintext_adds_nothing_to_the_jobs_files():
    """A cluster without security keeps stream.ini and stream.env as they were: no restart on upgrade."""
    stream = Role("customer_stream", {})
    assert stream.value("{{ __customer_stream_all_kafka_options }}") == {}
    assert stream.value("{{ __customer_stream_all_secret_environment }}") == {}
    assert "[kafka_options]\n\n[hdfs]" in stream.render("stream.ini.j2")
    assert Role("customer_producer", {}).value("{{ customer_producer_kafka_security_protocol }}") == "PLAINTEXT"
    assert Role("kafka_topics", {}).value("{{ kafka_topics_security_protocol }}") == "PLAINTEXT"


def test_the_jobs_clients_get_sasl_ssl_with_the_password_only_in_stream_env(tmp_path):
    stream = Role("customer_stream", SASL_SSL)
    ini, env = stream.render("stream.ini.j2"), stream.render("stream.env.j2")
    assert PASSWORD not in ini
    assert f"CUSTOMER_STREAM_KAFKA_SASL_PASSWORD={PASSWORD}\n" in env
    (tmp_path / "stream.ini").write_text(ini)
    config = load_config(str(tmp_path / "stream.ini"), environ={"CUSTOMER_STREAM_KAFKA_SASL_PASSWORD": PASSWORD})
    expected = {
        "kafka.bootstrap.servers": "node1:9094",
        "kafka.security.protocol": "SASL_SSL",
        "kafka.sasl.mechanism": "SCRAM-SHA-512",
        "kafka.sasl.jaas.config": 'org.apache.kafka.common.security.scram.ScramLoginModule required'
                                  f' username="pipeline" password="{PASSWORD}";',
        "kafka.ssl.truststore.type": "PEM",
        "kafka.ssl.truststore.location": "/etc/kafka/tls/ca.pem",
    }
    for options in (config.kafka_source_options(), config.kafka_sink_options()):
        assert {name: options.get(name) for name in expected} == expected


def test_plain_sasl_over_plaintext_and_an_explicit_option_wins():
    stream = Role("customer_stream", dict(SASL_SSL, cluster_kafka_security_protocol="SASL_PLAINTEXT",
                                          cluster_kafka_sasl_mechanism="PLAIN",
                                          customer_stream_kafka_options={"sasl.mechanism": "PLAIN",
                                                                         "client.dns.lookup": "use_all_dns_ips"}))
    options = stream.value("{{ __customer_stream_all_kafka_options }}")
    assert options["sasl.jaas.config"].startswith("org.apache.kafka.common.security.plain.PlainLoginModule required")
    assert options["client.dns.lookup"] == "use_all_dns_ips"
    # No TLS: the CA is not the clients' business.
    assert "ssl.truststore.location" not in options


def test_the_producer_gets_sasl_ssl_with_the_password_only_in_producer_env(tmp_path, monkeypatch):
    producer = Role("customer_producer", SASL_SSL)
    ini, env = producer.render("producer.ini.j2"), producer.render("producer.env.j2")
    assert PASSWORD not in ini
    assert f"KAFKA_SASL_PASSWORD={PASSWORD}\n" in env
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    (tmp_path / "producer.ini").write_text(ini.replace("/etc/kafka/tls/ca.pem", str(ca)))
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", PASSWORD)
    options = producer_config.load(str(tmp_path / "producer.ini")).kafka.client_options()
    assert (options["security_protocol"], options["sasl_mechanism"], options["sasl_plain_username"],
            options["sasl_plain_password"], options["ssl_cafile"]) == (
        "SASL_SSL", "SCRAM-SHA-512", "pipeline", PASSWORD, str(ca))


@pytest.mark.parametrize("role, prefix", [("kafka_topics", "kafka_topics_"), ("pipeline_reset", "pipeline_reset_kafka_")])
def test_the_topics_module_takes_the_cluster_settings_and_the_controllers_ca(role, prefix):
    settings = Role(role, dict(SASL_SSL, cluster_kafka_ssl_cafile_controller="/home/me/ca.pem"))
    values = {name: settings.value("{{ %s%s }}" % (prefix, name))
              for name in ("security_protocol", "sasl_mechanism", "sasl_username", "sasl_password", "ssl_cafile")}
    assert values == {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
                      "sasl_username": "pipeline", "sasl_password": PASSWORD, "ssl_cafile": "/home/me/ca.pem"}
    # Without a controller path the nodes' path is used (the same file on both).
    assert Role(role, SASL_SSL).value("{{ %sssl_cafile }}" % prefix) == "/etc/kafka/tls/ca.pem"
