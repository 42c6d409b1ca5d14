"""Each name of the pipeline is written in one place, and every inventory defines all of them.

The pipeline's folders, Kafka topics, HDFS datasets, spark-submit and JAVA_HOME are set once
per inventory: in its group_vars (pipeline_* in pipeline.yml, cluster_* in cluster.yml) or in
the one role that owns the value (the java role's java_home); every other role's default
refers to that variable instead of repeating the value. The test reads the YAML of every
role's defaults and vars and of each inventory's group_vars, collects the literal strings in
the values (also those quoted inside Jinja expressions, such as a default('...'), and the text
around them), and fails when a watched value is defined in more than one place.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
INVENTORIES = sorted(path for path in (ROOT / "inventory").iterdir() if (path / "group_vars").is_dir())
ROLE_FILES = sorted(path for folder in (ROOT / "roles", ROOT / "sandbox" / "roles")
                    for path in folder.glob("*/*/main.yml") if path.parent.name in ("defaults", "vars"))

# Values that name the pipeline's things, or the Java the sandbox's services share.
WATCHED = (
    re.compile(r"^/opt/"),                       # install folders
    re.compile(r"^/etc/customer-pipeline"),      # the services' settings
    re.compile(r"^/usr/lib/jvm/"),               # JAVA_HOME
    re.compile(r"/spark-submit$"),               # the cluster's spark-submit (a path, or "{{ a folder }}/spark-submit")
    re.compile(r"^customers-[a-z-]+$"),          # Kafka topics
    re.compile(r"customers_(usa|alerts)|checkpoints/"),  # HDFS datasets and the checkpoint
)

# Copies that stay for now, each with its reason (none).
KNOWN_COPIES: set = set()

JINJA = re.compile(r"{{.*?}}|{%.*?%}", re.S)
QUOTED = re.compile(r"'([^']*)'|\"([^\"]*)\"")


def literals(value: str) -> Iterator[str]:
    """The literal strings a value holds: itself, or the text around and the quotes inside its Jinja."""
    if "{{" not in value and "{%" not in value:
        yield value
        return
    for expression in JINJA.findall(value):
        for single, double in QUOTED.findall(expression):
            yield single or double
    for text in JINJA.split(value):
        if text.strip():
            yield text.strip()


def walk(value, path: str) -> Iterator[Tuple[str, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from walk(item, "%s.%s" % (path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from walk(item, "%s[%d]" % (path, index))
    elif isinstance(value, str):
        for literal in literals(value):
            yield path, literal


def watched(data: dict) -> Iterator[Tuple[str, str]]:
    """(variable, literal) for every watched literal in the values of a YAML mapping."""
    for name, value in data.items():
        for place, literal in walk(value, name):
            if any(pattern.search(literal) for pattern in WATCHED):
                yield place, literal


def definitions(files: List[Path]) -> Dict[str, List[str]]:
    """Watched literal -> the places (file: variable) that define it."""
    found: Dict[str, List[str]] = defaultdict(list)
    for path in files:
        relative = str(path.relative_to(ROOT))
        data = {name: value for name, value in (yaml.safe_load(path.read_text()) or {}).items()
                if (relative, name) not in KNOWN_COPIES}
        for place, literal in watched(data):
            found[literal].append("%s: %s" % (relative, place))
    return found


def group_vars(inventory: Path) -> List[Path]:
    return sorted((inventory / "group_vars").rglob("*.yml"))


@pytest.mark.parametrize("inventory", INVENTORIES, ids=lambda path: path.name)
def test_each_watched_value_is_defined_once(inventory):
    found = definitions(ROLE_FILES + group_vars(inventory))
    copies = {literal: places for literal, places in found.items() if len(places) > 1}
    assert copies == {}


@pytest.mark.parametrize("inventory", INVENTORIES, ids=lambda path: path.name)
def test_the_check_sees_the_names_where_they_are_defined(inventory):
    """Not vacuous: the pipeline's names are found, in the inventory and not in a role."""
    found = definitions(ROLE_FILES + group_vars(inventory))
    for literal in ("/opt/customer-pipeline", "/etc/customer-pipeline", "customers-raw", "customers-usa",
                    "customers-alerts", "customers-raw-progress", "/customers_usa", "/customers_alerts"):
        assert len(found[literal]) == 1, literal
        assert found[literal][0].startswith("inventory/%s/group_vars/" % inventory.name), found[literal]
    # JAVA_HOME: the java role installs Java and names its home; kafka and hdfs read java_home.
    assert found["/usr/lib/jvm/java-17-openjdk-amd64"] == ["sandbox/roles/java/defaults/main.yml: java_home"]
    assert [place for literal, places in found.items() if literal.endswith("/spark-submit") for place in places] == [
        "inventory/%s/group_vars/all/cluster.yml: cluster_spark_submit" % inventory.name]


def test_a_copy_would_be_caught():
    """The collector finds a value repeated in a default('...') inside Jinja, as reset's paths were."""
    copy = yaml.safe_load("x_topics:\n  - \"{{ y_topic | default('customers-raw') }}\"\n"
                          "x_path: \"{{ z_path | default(cluster_hdfs_user_dir ~ '/customers_usa') }}\"\n"
                          "x_home: \"{{ y_home | default('/opt/customer-pipeline') }}/jars\"\n")
    assert sorted(watched(copy)) == [("x_home", "/opt/customer-pipeline"), ("x_path", "/customers_usa"),
                                     ("x_topics[0]", "customers-raw")]


REFERENCE = re.compile(r"\b((?:pipeline|cluster)_[a-z0-9_]+)\b")


def referenced_inventory_names() -> Dict[str, List[str]]:
    """pipeline_* and cluster_* names read in the Jinja of the roles and playbooks (role variables left out)."""
    role_prefixes = tuple(path.name + "_" for folder in (ROOT / "roles", ROOT / "sandbox" / "roles")
                          for path in folder.iterdir() if path.is_dir())
    files = [path for folder in (ROOT / "roles", ROOT / "playbooks", ROOT / "sandbox")
             for path in folder.rglob("*") if path.suffix in (".yml", ".j2")]
    names: Dict[str, List[str]] = defaultdict(list)
    for path in files:
        for expression in JINJA.findall(path.read_text()):
            for name in REFERENCE.findall(expression):
                if not name.startswith(role_prefixes):
                    names[name].append(str(path.relative_to(ROOT)))
    return names


def test_the_roles_read_the_pipeline_names():
    names = referenced_inventory_names()
    assert {"pipeline_home", "pipeline_topic_raw", "pipeline_hdfs_usa_path", "cluster_spark_submit"} <= set(names)


@pytest.mark.parametrize("inventory", INVENTORIES, ids=lambda path: path.name)
def test_every_inventory_defines_what_the_roles_read(inventory):
    defined = set()
    for path in group_vars(inventory):
        defined |= set(yaml.safe_load(path.read_text()) or {})
    missing = {name: sorted(set(places))[:3] for name, places in referenced_inventory_names().items()
               if name not in defined}
    assert missing == {}


def test_the_inventories_define_the_same_pipeline_and_cluster_names():
    # Role variables whose role is named pipeline_* (pipeline_python_version, ...) are settings, not names.
    role_prefixes = tuple(path.name + "_" for path in (ROOT / "roles").iterdir() if path.name.startswith("pipeline_"))
    names = {}
    for inventory in INVENTORIES:
        defined = set()
        for path in group_vars(inventory):
            defined |= {name for name in yaml.safe_load(path.read_text()) or {}
                        if name.startswith(("pipeline_", "cluster_")) and not name.startswith(role_prefixes)}
        names[inventory.name] = defined
    assert len(set(map(frozenset, names.values()))) == 1, names


@pytest.mark.parametrize("path", [path for inventory in INVENTORIES for path in group_vars(inventory)],
                         ids=lambda path: str(path.relative_to(ROOT / "inventory")))
def test_every_inventory_variable_is_commented(path):
    """Each variable has a comment above it, or in the lines of its paragraph above it."""
    lines = path.read_text().splitlines()
    for index, line in enumerate(lines):
        if not re.match(r"^[a-z_][a-z0-9_]*:", line):
            continue
        above = []
        for previous in reversed(lines[:index]):
            if not previous.strip() or previous == "---":
                break
            above.append(previous)
        assert any(previous.startswith("#") for previous in above), "%s: %s has no comment" % (path.name, line)
