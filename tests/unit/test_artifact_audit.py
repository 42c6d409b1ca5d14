"""tests/support/artifact_audit.py: ranges, acceptances, the advisory file's errors, the real file."""

from __future__ import annotations

import textwrap
from pathlib import Path

import artifact_audit as audit
import pytest

FILE = textwrap.dedent("""\
    packages:
      - name: urllib3
        ecosystem: pypi
        advisories:
          - id: GHSA-test-0001
            summary: test
            source: https://example.invalid/1
            fixed: "2.6.0"
            affected: [{introduced: "1.24", fixed: "2.6.0"}]
            accepted:
              - versions: ["1.26.20"]
                reason: trusted endpoint only
      - name: org.apache.kafka:kafka-clients
        ecosystem: maven
        advisories:
          - id: CVE-test-0002
            summary: test
            source: https://example.invalid/2
            fixed: "3.9.2"
            affected: [{introduced: "2.8.0", fixed: "3.9.2"}]
      - name: org.lz4:lz4-java
        ecosystem: maven
        advisories:
          - id: CVE-test-0003
            summary: test
            source: https://example.invalid/3
            affected: [{last_affected: "1.8.0"}]
    """)


@pytest.fixture
def packages(tmp_path: Path) -> dict[tuple[str, str], audit.Package]:
    path = tmp_path / "known-vulnerable.yml"
    path.write_text(FILE)
    return audit.load_advisories(path)


def statuses(packages: dict[tuple[str, str], audit.Package], *items: audit.Item) -> list[tuple[str, str, str]]:
    return [(r.artifact, r.version, r.status) for r in audit.audit(items, packages)]


def test_a_version_inside_a_range_is_flagged(packages: dict[tuple[str, str], audit.Package]) -> None:
    rows = statuses(packages, audit.Item("maven", "org.apache.kafka:kafka-clients", "3.4.1", "x"),
                    audit.Item("pypi", "urllib3", "2.5.0", "y"))
    assert ("org.apache.kafka:kafka-clients", "3.4.1", "AFFECTED") in rows
    assert ("urllib3", "2.5.0", "AFFECTED") in rows


@pytest.mark.parametrize("version", ["2.7.1", "3.9.2", "4.0.0", "3.10.0"])
def test_a_version_outside_the_range_is_not(packages: dict[tuple[str, str], audit.Package], version: str) -> None:
    assert statuses(packages, audit.Item("maven", "org.apache.kafka:kafka-clients", version, "x")) == [
        ("org.apache.kafka:kafka-clients", version, "ok")]


def test_last_affected_is_inclusive(packages: dict[tuple[str, str], audit.Package]) -> None:
    rows = statuses(packages, audit.Item("maven", "org.lz4:lz4-java", "1.8.0", "x"),
                    audit.Item("maven", "org.lz4:lz4-java", "1.8.1", "x"))
    assert rows == [("org.lz4:lz4-java", "1.8.0", "AFFECTED"), ("org.lz4:lz4-java", "1.8.1", "ok")]


def test_accepted_versions_pass_and_others_do_not(packages: dict[tuple[str, str], audit.Package]) -> None:
    rows = statuses(packages, audit.Item("pypi", "urllib3", "1.26.20", "x"), audit.Item("pypi", "urllib3", "1.26.19", "x"))
    assert ("urllib3", "1.26.20", "accepted") in rows
    assert ("urllib3", "1.26.19", "AFFECTED") in rows


def test_names_match_as_pip_and_maven_spell_them(packages: dict[tuple[str, str], audit.Package]) -> None:
    assert statuses(packages, audit.Item("pypi", "URLLib3", "2.0.0", "x")) == [("urllib3", "2.0.0", "AFFECTED")]
    jar = audit.jar_item("kafka-clients-3.4.1.jar", ["kafka-clients", "kafka"], "set")
    assert jar == audit.Item("maven", "kafka-clients", "3.4.1", "set")
    assert audit.jar_item("kafka_2.13-3.9.1.jar", ["kafka-clients", "kafka"], "s") == audit.Item("maven", "kafka", "3.9.1", "s")
    assert audit.jar_item("zstd-jni-1.5.5-4.jar", ["zstd-jni"], "s") == audit.Item("maven", "zstd-jni", "1.5.5-4", "s")


@pytest.mark.parametrize("lower, higher", [("1.5.5-4", "1.5.6"), ("1.5.5", "1.5.5-4"), ("3.0.0-rc1", "3.0.0"),
                                           ("4.1.96.Final", "4.1.100.Final"), ("0.10.2.0", "1.1.1"), ("3.9", "3.10")])
def test_maven_versions_compare_like_maven(lower: str, higher: str) -> None:
    assert audit._compare("maven", lower, higher) < 0 < audit._compare("maven", higher, lower)
    assert audit._compare("maven", "4.1.96.Final", "4.1.96") == 0


@pytest.mark.parametrize("text, message", [
    ("packages: {}", "a 'packages' list"),
    ("packages: [{name: x, ecosystem: npm, advisories: []}]", "ecosystem must be one of"),
    ("packages: [{name: x, ecosystem: pypi}]", "'advisories' is missing"),
    ("packages: [{name: x, ecosystem: pypi, advisories: [{id: A, summary: s, source: u}]}]", "needs at least one range"),
    ("packages: [{name: x, ecosystem: pypi, advisories: [{id: A, summary: s, source: u, affected: [{fixed: 'not a version'}]}]}]",
     "is not a pypi version"),
    ("packages: [{name: x, ecosystem: pypi, advisories: [{id: A, summary: s, source: u, affected: [{fixd: '1'}]}]}]",
     "introduced/fixed/last_affected"),
    ("packages: [{name: x, ecosystem: pypi, advisories: [{id: A, summary: s, source: u, affected: [{fixed: '1'}], "
     "accepted: [{versions: ['0.9']}]}]}]", "'reason' must be a non-empty string"),
    ("packages: [{name: x, ecosystem: pypi, advisories: [{id: A, source: u, affected: [{fixed: '1'}]}]}]", "'summary'"),
    ("packages: [{name: X, ecosystem: pypi, advisories: []}, {name: x, ecosystem: pypi, advisories: []}]", "listed twice"),
    ("packages: [unclosed", "not YAML"),
])
def test_a_malformed_file_gives_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yml"
    path.write_text(text)
    with pytest.raises(audit.AdvisoryFileError, match=message):
        audit.load_advisories(path)


def test_main_exits_2_on_a_malformed_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yml"
    path.write_text("packages: [{name: x}]")
    assert audit.main(["--advisories", str(path), "--no-pip-audit"]) == 2
    assert "malformed advisory file" in capsys.readouterr().err


def test_main_fails_on_an_unaccepted_finding_in_the_cache(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    advisories = tmp_path / "known.yml"
    advisories.write_text(FILE)
    wheels = tmp_path / "cache" / "wheels" / "deps-py3.8"
    wheels.mkdir(parents=True)
    (wheels / "requirements.lock").write_text("urllib3==1.26.20 --hash=sha256:00\nsix==1.17.0 --hash=sha256:11\n")
    jars = tmp_path / "cache" / "maven" / "connector"
    jars.mkdir(parents=True)
    (jars / "SHA256SUMS").write_text("00  kafka-clients-3.4.1.jar\n11  commons-pool2-2.11.1.jar\n")
    common = ["--advisories", str(advisories), "--cache", str(tmp_path / "cache"), "--venv", str(tmp_path),
              "--no-declared", "--no-pip-audit"]
    assert audit.main(common) == 1
    out = capsys.readouterr().out
    assert "AFFECTED org.apache.kafka:kafka-clients 3.4.1: CVE-test-0002" in out
    assert "six  " in out and "untracked" in out
    (jars / "SHA256SUMS").write_text("00  kafka-clients-3.9.2.jar\n")
    assert audit.main(common) == 0


def test_the_checked_in_file_loads_and_covers_the_declared_sets() -> None:
    packages = audit.load_advisories(audit.ADVISORY_FILE)
    items = audit.declared_items()
    shipped = {audit.package_key(i.ecosystem, i.name) for i in items
               if i.ecosystem == "pypi" and i.where.startswith("roles/")}
    assert shipped <= {key for (ecosystem, key) in packages if ecosystem == "pypi"}
    assert any(i.name == "org.apache.kafka:kafka-clients" and i.version == "3.9.2" for i in items)
