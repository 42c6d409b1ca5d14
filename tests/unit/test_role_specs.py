"""Every role documents its public variables: defaults/main.yml and meta/argument_specs.yml agree."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
# The pipeline's roles (shipped in the collection) and the sandbox's (the test cluster).
ROLE_DIRS = {path.name: path for folder in (ROOT / "roles", ROOT / "sandbox" / "roles")
             for path in folder.iterdir() if path.is_dir()}
ALL_ROLES = sorted(ROLE_DIRS)


def test_there_are_roles():
    assert {"sandbox_node", "java", "artifact_cache", "customer_stream"} <= set(ALL_ROLES)


def test_pipeline_and_sandbox_roles_are_apart():
    """A reader tells from the tree which roles deploy the pipeline and which build the test cluster."""
    assert ROLE_DIRS["customer_stream"].parent == ROOT / "roles"
    # Spark is the pipeline's (a cluster installs it beside its own Spark); the sandbox uses it too.
    assert ROLE_DIRS["spark_runtime"].parent == ROOT / "roles"
    assert {name for name, path in ROLE_DIRS.items() if path.parent == ROOT / "sandbox" / "roles"} == {
        "sandbox_node", "sandbox_data", "java", "zookeeper", "kafka", "hdfs", "yarn", "seaweedfs", "hdp_layout"}


@pytest.mark.parametrize("role", ALL_ROLES)
def test_role_has_argument_specs(role):
    assert (ROLE_DIRS[role] / "meta" / "argument_specs.yml").is_file()
    assert (ROLE_DIRS[role] / "meta" / "main.yml").is_file()


@pytest.mark.parametrize("role", ALL_ROLES)
def test_defaults_and_argument_specs_agree(role):
    defaults_file = ROLE_DIRS[role] / "defaults" / "main.yml"
    defaults = yaml.safe_load(defaults_file.read_text()) or {} if defaults_file.exists() else {}
    specs = yaml.safe_load((ROLE_DIRS[role] / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    main_options = (specs.get("main") or {}).get("options") or {}
    missing = sorted(set(defaults) - set(main_options))
    assert missing == [], "%s: defaults not in argument_specs main: %s" % (role, missing)
    for entry, spec in specs.items():
        for name, option in (spec.get("options") or {}).items():
            assert option.get("description"), "%s/%s: %s has no description" % (role, entry, name)
            assert "type" in option, "%s/%s: %s has no type" % (role, entry, name)


@pytest.mark.parametrize("role", ALL_ROLES)
def test_public_variables_carry_the_role_prefix(role):
    defaults_file = ROLE_DIRS[role] / "defaults" / "main.yml"
    if not defaults_file.exists():
        pytest.skip("%s has no defaults" % role)
    defaults = yaml.safe_load(defaults_file.read_text()) or {}
    wrong = [name for name in defaults if not name.startswith(role + "_")]
    assert wrong == [], "%s: defaults without the role prefix: %s" % (role, wrong)


@pytest.mark.parametrize("role", ALL_ROLES)
def test_every_default_has_a_comment(role):
    defaults_file = ROLE_DIRS[role] / "defaults" / "main.yml"
    if not defaults_file.exists():
        pytest.skip("%s has no defaults" % role)
    lines = defaults_file.read_text().splitlines()
    for index, line in enumerate(lines):
        if line and not line.startswith((" ", "#", "-")) and ":" in line:
            assert index > 0 and lines[index - 1].startswith("#"), "%s: %s has no comment" % (role, line)
