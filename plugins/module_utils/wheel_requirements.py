"""Requirements and wheel dependencies evaluated for a TARGET Python, not the controller's.

pip download --python-version picks wheels for another Python, but evaluates environment
markers (`; python_version < "3.10"`) for the Python running pip (pypa/pip#11010): the
markers of the requirements handed to it and those of every dependency it resolves. A
controller on 3.11 thus gives a 3.8 node urllib3 2, which botocore refuses below 3.10. The
functions here evaluate the markers for the target instead: which requirements apply, and,
for a set pinned whole, whether the wheels' own dependencies are all in it.
"""

from __future__ import annotations

import email.parser
import os
import re
import traceback
import zipfile
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

from ansible_collections.customer_streaming.pipeline.plugins.module_utils.artifact_build import ArtifactError

try:
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name
    from packaging.version import InvalidVersion, Version
except ImportError:  # reported by the module with missing_required_lib
    HAS_PACKAGING = False
    PACKAGING_IMPORT_ERROR: Optional[str] = traceback.format_exc()
else:
    HAS_PACKAGING = True
    PACKAGING_IMPORT_ERROR = None


class RequirementError(ArtifactError):
    """A requirement list or a wheel set that cannot serve the target; the message says why."""


# The machine a wheel platform tag is for: manylinux2014_x86_64, musllinux_1_2_aarch64, linux_armv7l.
MACHINE = re.compile(r"(x86_64|aarch64|ppc64le|s390x|i686|armv7l)$")


def target_environment(python_version: str, platforms: Sequence[str]) -> Dict[str, str]:
    """The marker environment of CPython python_version on Linux for the platforms' machine.

    python_full_version is <major.minor>.0, as pip reads --python-version 3.8. Names left
    out (platform_release, platform_version) keep the controller's values.
    """
    parts = str(python_version).split(".")
    if len(parts) < 2 or not all(part.isdigit() for part in parts):
        raise RequirementError("python_version %r is not major.minor (such as 3.8)" % (python_version,))
    full = ".".join((parts + ["0"])[:3])
    environment = {
        "python_version": ".".join(parts[:2]),
        "python_full_version": full,
        "implementation_name": "cpython",
        "implementation_version": full,
        "platform_python_implementation": "CPython",
        "extra": "",
    }
    if any("linux" in platform for platform in platforms):
        environment.update(os_name="posix", sys_platform="linux", platform_system="Linux")
    machines = [match.group(1) for match in (MACHINE.search(platform) for platform in platforms) if match]
    if machines:
        environment["platform_machine"] = machines[0]
    return environment


def parse_requirement(text: str) -> Requirement:
    try:
        return Requirement(text)
    except InvalidRequirement as exc:
        raise RequirementError("requirement %r is not a valid requirement: %s" % (text, exc)) from exc


def without_marker(text: str, requirement: Requirement) -> str:
    """The requirement as pip gets it: the text itself when it has no marker, so a list without
    markers keeps the request (and its marker file) it had before markers were read."""
    if requirement.marker is None:
        return text.strip()
    requirement.marker = None
    return str(requirement)


def target_requirements(requirements: Iterable[str], python_version: str,
                        platforms: Sequence[str]) -> List[str]:
    """The requirements whose marker holds for the target, without the marker, in their order.

    Two that name the same project for the target are refused: overlapping markers would
    leave the choice to pip.
    """
    environment = target_environment(python_version, platforms)
    taken: List[str] = []
    by_name: Dict[str, str] = {}
    for text in requirements:
        requirement = parse_requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate(environment):
            continue
        name = canonicalize_name(requirement.name)
        if name in by_name:
            raise RequirementError("%r and %r both apply to CPython %s: give each Python one requirement of %s "
                                   "(markers that do not overlap)" % (by_name[name], text, python_version, name))
        by_name[name] = text
        taken.append(without_marker(text, requirement))
    if not taken:
        raise RequirementError("no requirement applies to CPython %s" % python_version)
    return taken


def check_pinned(requirements: Iterable[str]) -> None:
    """Each requirement pins one version (name==version), so the set is reproducible."""
    loose = []
    for text in requirements:
        requirement = parse_requirement(text)
        specifiers = list(requirement.specifier)
        if (requirement.url or len(specifiers) != 1 or specifiers[0].operator not in ("==", "===")
                or specifiers[0].version.endswith("*")):
            loose.append(text)
    if loose:
        raise RequirementError("requirement(s) %s do not pin one version (name==version), which a pinned set "
                               "needs" % ", ".join(loose))


def wheel_metadata(path: str) -> Tuple[str, str, List[str]]:
    """(Name, Version, Requires-Dist lines) from a wheel's .dist-info/METADATA."""
    with zipfile.ZipFile(path) as archive:
        names = [name for name in archive.namelist()
                 if name.count("/") == 1 and name.endswith(".dist-info/METADATA")]
        if len(names) != 1:
            raise RequirementError("wheel %s has %d .dist-info/METADATA files, not one"
                                   % (os.path.basename(path), len(names)))
        text = archive.read(names[0]).decode("utf-8")
    message = email.parser.HeaderParser().parsestr(text)
    if not message["Name"] or not message["Version"]:
        raise RequirementError("wheel %s has no Name or Version in its METADATA" % os.path.basename(path))
    return message["Name"], message["Version"], list(message.get_all("Requires-Dist") or [])


def unmet_dependencies(wheel_dir: str, requirements: Iterable[str], python_version: str,
                       platforms: Sequence[str]) -> List[str]:
    """What the wheels in wheel_dir need on the target and do not hold, one sentence each.

    Walks from the requirements through each wheel's Requires-Dist whose marker holds for
    the target (with the extras asked of it), checking that the set holds every project
    named, at a version its specifier allows.
    """
    environment = target_environment(python_version, platforms)
    wheels: Dict[str, Tuple[str, Version, List[str]]] = {}
    for file_name in sorted(os.listdir(wheel_dir)):
        if file_name.endswith(".whl"):
            name, version, requires = wheel_metadata(os.path.join(wheel_dir, file_name))
            try:
                wheels[canonicalize_name(name)] = (name, Version(version), requires)
            except InvalidVersion as exc:
                raise RequirementError("wheel %s has an invalid version %r" % (file_name, version)) from exc
    queue: List[Tuple[Requirement, str]] = [(parse_requirement(text), "the requirements")
                                              for text in requirements]
    done: Set[Tuple[str, Tuple[str, ...]]] = set()
    problems: List[str] = []
    while queue:
        requirement, needed_by = queue.pop(0)
        key = canonicalize_name(requirement.name)
        found = wheels.get(key)
        wanted = "%s%s" % (requirement.name, requirement.specifier)
        if found is None:
            problems.append("%s needs %s on CPython %s, and the set has no %s"
                            % (needed_by, wanted, python_version, requirement.name))
            continue
        name, version, requires = found
        if not requirement.specifier.contains(version, prereleases=True):
            problems.append("%s needs %s on CPython %s, and the set has %s %s"
                            % (needed_by, wanted, python_version, name, version))
            continue
        extras = tuple(sorted(canonicalize_name(extra) for extra in requirement.extras))
        if (key, extras) in done:
            continue
        done.add((key, extras))
        for text in requires:
            dependency = parse_requirement(text)
            applies = dependency.marker is None or any(
                dependency.marker.evaluate(dict(environment, extra=extra)) for extra in ("",) + extras)
            if applies:
                queue.append((dependency, "%s %s" % (name, version)))
    return list(dict.fromkeys(problems))
