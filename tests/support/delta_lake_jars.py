"""Delta Lake's jars for the tests that run Spark with `output_format = delta`.

The spark_delta_lake role's own coordinates (its defaults, for the Spark series it
targets), resolved by the collection's maven_artifacts module with Maven's checksums
enforced, into the controller's cache, as deploy.yml does.
"""

from __future__ import annotations

import functools
import os
import shutil
from pathlib import Path
from typing import List, Optional, Tuple

import yaml

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "maven" / "test-spark-delta-lake"
ROLE_DEFAULTS = yaml.safe_load((ROOT / "roles/spark_delta_lake/defaults/main.yml").read_text())
SPARK_SERIES = ".".join(ROLE_DEFAULTS["spark_delta_lake_spark_version"].split(".")[:2])


def maven_command() -> Optional[str]:
    """The Maven command, or None when it is not on PATH."""
    maven = os.environ.get("MAVEN", "mvn")
    return maven if shutil.which(maven.split()[0]) else None


def delta_lake_jars(maven: str) -> List[str]:
    """Paths of the role's Delta Lake jars, fetched into the cache when missing."""
    from ansible_collections.customer_streaming.pipeline.plugins.modules import maven_artifacts

    result = maven_artifacts.ensure_artifacts(
        str(CACHE), ROLE_DEFAULTS["spark_delta_lake_versions"][SPARK_SERIES], transitive=False, maven_command=maven)
    return [str(CACHE / name) for name in result["jars"]]


@functools.lru_cache(maxsize=None)
def delta_lake_jars_if_maven() -> Tuple[str, ...]:
    """The jars, resolved once per test run; () without Maven."""
    maven = maven_command()
    return tuple(delta_lake_jars(maven)) if maven else ()
