"""The job's settings that only the cluster can judge: checked before the query starts, and
named when the query fails on one later.

A folder the job's HDFS user may not write, or a topic that is not there, used to end in a
Java stack trace whose last line named neither the setting nor the folder. Before the query
starts, the job now checks that it may write each output folder and the checkpoint (the
deepest part of each path that exists, as HDFS's own permission check does); a failure met
later (a permission taken away, a topic deleted) gets the setting it points at appended to
the job's one error line. Both end the job with exit 1, not 2: systemd restarts it with its
growing back-off, so a permission fixed on HDFS is picked up without a deploy.
"""

from __future__ import annotations

import re
from typing import Any, List, Optional, Tuple

from customer_pipeline.stream.config import StreamConfig

# stream.ini's key of each path and topic, with the inventory variable that sets it.
PATH_SETTINGS: Tuple[Tuple[str, str], ...] = (
    ("usa_path", "customer_stream_usa_path"),
    ("alerts_path", "customer_stream_alerts_path"),
    ("checkpoint_location", "customer_stream_checkpoint_location"),
)
TOPIC_SETTINGS: Tuple[Tuple[str, str], ...] = (
    ("raw_topic", "customer_stream_raw_topic"),
    ("usa_topic", "customer_stream_usa_topic"),
    ("alerts_topic", "customer_stream_alerts_topic"),
)

_DENIED_INODE = re.compile(r'AccessControlException: Permission denied: .*?inode="([^"]+)"')
_MISSING_TOPIC = re.compile(r"Topic (\S+?)\.? not present in metadata")
_UNKNOWN_TOPIC = re.compile(r"UnknownTopicOrPartitionException.*?topic[= ]+([\w.-]+)", re.IGNORECASE)


def named(section: str, key: str, value: str, variable: str) -> str:
    return f"[{section}] {key} = {value} ({variable})"


def unwritable_path(spark: Any, config: StreamConfig) -> Optional[str]:
    """One line naming the first output path the job's HDFS user may not write, or None."""
    from py4j.protocol import Py4JJavaError

    jvm = spark._jvm
    hadoop_conf = spark._jsc.hadoopConfiguration()
    write = jvm.org.apache.hadoop.fs.permission.FsAction.valueOf("WRITE_EXECUTE")
    user = jvm.org.apache.hadoop.security.UserGroupInformation.getCurrentUser().getShortUserName()
    for key, variable in PATH_SETTINGS:
        value = getattr(config, key)
        path = jvm.org.apache.hadoop.fs.Path(value)
        fs = path.getFileSystem(hadoop_conf)
        existing = path
        while existing is not None and not fs.exists(existing):
            existing = existing.getParent()
        if existing is None:
            continue
        try:
            fs.access(existing, write)
        except Py4JJavaError as error:
            if not error.java_exception.getClass().getName().endswith("AccessControlException"):
                raise
            said = str(error.java_exception.getMessage() or "").strip().splitlines()
            return (f"{named('hdfs', key, value, variable)}: {user} may not write {existing.toString()}"
                    f" ({said[0] if said else 'permission denied'}); give {user} write access there or choose"
                    " another folder: the job checks again at each restart")
    return None


def setting_behind(cause: str, config: StreamConfig) -> Optional[str]:
    """Which setting a failure's root cause points at: a folder HDFS refused, a missing topic."""
    denied = _DENIED_INODE.search(cause)
    if denied:
        inode = denied.group(1).rstrip("/")
        settings: List[str] = [named("hdfs", key, getattr(config, key), variable) for key, variable in PATH_SETTINGS
                               if _same_or_under(getattr(config, key), inode) or _same_or_under(inode, getattr(config, key))]
        if settings:
            return "check the permissions for " + " and ".join(settings)
    topic = _MISSING_TOPIC.search(cause) or _UNKNOWN_TOPIC.search(cause)
    if topic:
        settings = [named("kafka", key, getattr(config, key), variable) for key, variable in TOPIC_SETTINGS
                    if getattr(config, key) == topic.group(1)]
        if settings:
            return "check " + " and ".join(settings) + ": the topic must exist (deploy.yml creates it)"
    return None


def _same_or_under(path: str, folder: str) -> bool:
    path, folder = _hdfs_path(path), _hdfs_path(folder)
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _hdfs_path(value: str) -> str:
    """The path part of an HDFS URI (hdfs://nn:8020/a/b -> /a/b); a plain path as it is."""
    return re.sub(r"^[a-z][\w+.-]*://[^/]*", "", value).rstrip("/") or "/"
