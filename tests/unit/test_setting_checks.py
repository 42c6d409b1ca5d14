"""Which setting a failure of the job points at (no Spark started; the check of write access
before the query starts runs on a local Spark in test_stream_job.py)."""

from __future__ import annotations

import pytest

from customer_pipeline.stream.config import StreamConfig
from customer_pipeline.stream.setting_checks import setting_behind

CONFIG = StreamConfig(bootstrap_servers="b:9092", usa_path="/forbidden/customers_usa",
                      alerts_path="/user/maria_dev/customers_alerts",
                      checkpoint_location="hdfs://nn:8020/user/maria_dev/checkpoints/customer-stream")

# The failure text of a batch HDFS refused, as the job met it on the sandbox (shortened).
DENIED = (
    "[STREAM_FAILED] Query [id = 1] terminated with exception: An exception was raised by the Python Proxy.\n"
    "py4j.protocol.Py4JJavaError: An error occurred while calling o595.save.\n"
    ": org.apache.hadoop.security.AccessControlException: Permission denied: user=maria_dev, access=WRITE, "
    'inode="%s":hdfs:hdfs:drwxr-xr-x\n'
    "\tat org.apache.hadoop.hdfs.server.namenode.FSPermissionChecker.check(FSPermissionChecker.java:506)\n"
)


@pytest.mark.parametrize("inode, named", [
    # The folder above the dataset, the dataset itself, a day folder inside it.
    ("/forbidden", ["[hdfs] usa_path = /forbidden/customers_usa (customer_stream_usa_path)"]),
    ("/forbidden/customers_usa", ["[hdfs] usa_path = /forbidden/customers_usa (customer_stream_usa_path)"]),
    ("/user/maria_dev/customers_alerts/ingest_date=2026-12-03",
     ["[hdfs] alerts_path = /user/maria_dev/customers_alerts (customer_stream_alerts_path)"]),
    # A folder above two of them names both; the checkpoint's URI is compared by its path.
    ("/user/maria_dev", ["[hdfs] alerts_path = /user/maria_dev/customers_alerts (customer_stream_alerts_path)",
                         "[hdfs] checkpoint_location = hdfs://nn:8020/user/maria_dev/checkpoints/customer-stream "
                         "(customer_stream_checkpoint_location)"]),
])
def test_a_folder_hdfs_refused_names_the_path_settings_it_holds(inode, named):
    assert setting_behind(DENIED % inode, CONFIG) == "check the permissions for " + " and ".join(named)


def test_a_refused_folder_outside_every_path_names_nothing():
    # /user/maria_dev_other is not /user/maria_dev: names are compared a folder at a time.
    assert setting_behind(DENIED % "/user/maria_dev_other", CONFIG) is None
    assert setting_behind(DENIED % "/tmp/spark-staging", CONFIG) is None


def test_a_missing_output_topic_names_its_setting():
    failure = ("Caused by: org.apache.kafka.common.errors.TimeoutException: Topic customers-usa not present in "
               "metadata after 60000 ms.\n")
    assert setting_behind(failure, CONFIG) == (
        "check [kafka] usa_topic = customers-usa (customer_stream_usa_topic): the topic must exist "
        "(deploy.yml creates it)")
    assert setting_behind(failure.replace("customers-usa", "someone-elses"), CONFIG) is None


def test_any_other_failure_names_no_setting():
    assert setting_behind("java.net.ConnectException: Connection refused", CONFIG) is None
