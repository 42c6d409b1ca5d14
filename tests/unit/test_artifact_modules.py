"""Unit tests of the collection's artifact modules (pip_wheelhouse, maven_artifacts, project_wheel)
and their shared module_utils.artifact_build, without network: pip, Maven and the wheel build are
replaced by fakes that write what the real tools would, into tmp_path."""

from __future__ import annotations

import json
import os
import re
import stat
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("ansible.module_utils.basic")

from ansible_collections.customer_streaming.pipeline.plugins.module_utils import (  # noqa: E402
    artifact_build,
    wheel_requirements,
)
from ansible_collections.customer_streaming.pipeline.plugins.module_utils.artifact_build import (  # noqa: E402
    ArtifactError,
    CommandResult,
)
from ansible_collections.customer_streaming.pipeline.plugins.modules import (  # noqa: E402
    maven_artifacts,
    pip_wheelhouse,
    project_wheel,
)


def _option(argv, name):
    return argv[argv.index(name) + 1]


def _listing(path):
    return sorted(os.listdir(path)) if os.path.isdir(path) else None


def _no_leftovers(folder):
    return [name for name in os.listdir(folder) if name.endswith((".partial", ".old"))] == []


# --- module_utils.artifact_build ----------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        # The marker names the role wrote with `... | to_json | hash('sha1')` before the modules:
        # an existing cache keeps its marker, so it is neither resolved nor bundled again.
        ([["docopt==0.6.2", "six==1.16.0"], "3.11", ["manylinux2014_x86_64"], "https://pypi.org/simple"],
         "febd7e9a51fbd7e5670e2e9b262de0065e0d3661"),
        ([["junit:junit:4.13.2"], [], True], "c16fdba09f9633bab249fa25efb6ecd87b4e312d"),
        ([["junit:junit:4.13.2"], [], False], "056b192d5e92d2c5cc7e6bfb8c788852d6aafe82"),
    ],
)
def test_request_id_matches_the_markers_the_role_wrote(request_, expected):
    assert artifact_build.request_id(request_) == expected


def test_tail_keeps_the_last_lines_without_colours_or_blanks():
    text = "\x1b[0m\x1b[0m\n" + "".join("\x1b[1;31m[ERROR]\x1b[m line %d\n\n" % i for i in range(40))
    assert artifact_build.tail(text, 3) == "[ERROR] line 37\n[ERROR] line 38\n[ERROR] line 39"
    assert artifact_build.tail(None) == ""


def test_command_failure_names_what_failed_the_command_and_the_output():
    message = artifact_build.command_failure("cannot build x", ["pip", "wheel", "x"],
                                             CommandResult(2, "out line\n", "err line\n"))
    assert message == "cannot build x: pip wheel x exited with 2\nerr line\nout line"


def test_staging_dir_is_fresh_follows_the_umask_and_is_removed(tmp_path):
    dest = tmp_path / "cache" / "set"
    leftover = tmp_path / "cache" / "set.partial"
    leftover.mkdir(parents=True)
    (leftover / "half-written.jar").write_bytes(b"x")
    old_umask = os.umask(0o022)
    try:
        with artifact_build.staging_dir(str(dest)) as staged:
            assert staged == str(leftover) and os.listdir(staged) == []
            assert stat.S_IMODE(os.stat(staged).st_mode) == 0o755
    finally:
        os.umask(old_umask)
    assert not leftover.exists()
    with pytest.raises(RuntimeError):
        with artifact_build.staging_dir(str(dest)) as staged:
            (leftover / "a").write_text("a")
            raise RuntimeError("build failed")
    assert not leftover.exists() and not dest.exists()


def test_replace_dir_swaps_whole_and_puts_the_old_back_on_failure(tmp_path, monkeypatch):
    dest, new = tmp_path / "set", tmp_path / "new"
    dest.mkdir()
    (dest / "old.jar").write_text("old")
    new.mkdir()
    (new / "new.jar").write_text("new")
    artifact_build.replace_dir(str(new), str(dest))
    assert _listing(dest) == ["new.jar"] and not new.exists() and _no_leftovers(tmp_path)

    again = tmp_path / "again"
    again.mkdir()
    real_rename = os.rename

    def failing_rename(src, dst):
        if src == str(again):
            raise OSError("disk gone")
        real_rename(src, dst)

    monkeypatch.setattr(artifact_build.os, "rename", failing_rename)
    with pytest.raises(OSError, match="disk gone"):
        artifact_build.replace_dir(str(again), str(dest))
    assert _listing(dest) == ["new.jar"] and _no_leftovers(tmp_path)


def test_publish_replaces_only_different_content_and_then_invalidates(tmp_path):
    dest, staged, bundle = tmp_path / "set", tmp_path / "staged", tmp_path / "set.tar"
    for folder in (dest, staged):
        folder.mkdir()
        (folder / "a.jar").write_text("same")
    bundle.write_text("tar")
    assert artifact_build.publish(str(staged), str(dest), [str(bundle)])[0] is False
    assert bundle.exists() and staged.exists()

    (staged / "b.jar").write_text("new")
    changed, before, after = artifact_build.publish(str(staged), str(dest), [str(bundle)], check_mode=True)
    assert changed is True and sorted(before) == ["a.jar"] and sorted(after) == ["a.jar", "b.jar"]
    assert bundle.exists() and _listing(dest) == ["a.jar"]

    assert artifact_build.publish(str(staged), str(dest), [str(bundle)])[0] is True
    assert _listing(dest) == ["a.jar", "b.jar"] and not bundle.exists() and not staged.exists()


def test_folder_diff_lists_files_with_checksums(tmp_path):
    diff = artifact_build.folder_diff("/c/set", None, {"b.jar": "22", "a.jar": "11"})
    assert diff["before"] == "/c/set: absent\n"
    assert diff["after"] == "/c/set:\n  a.jar  sha256:11\n  b.jar  sha256:22\n"


# --- pip_wheelhouse -------------------------------------------------------------------------


class FakePip(object):
    """pip download/wheel as far as the module sees them: files appear in --dest/--wheel-dir."""

    def __init__(self, wheels, sdist_only=(), fail_download=False):
        self.wheels = wheels  # requirement -> wheel file names pip would download for it (deps too)
        self.sdist_only = set(sdist_only)
        self.fail_download = fail_download
        self.calls = []

    def __call__(self, argv, env=None, cwd=None):
        self.calls.append((list(argv), dict(env or {})))
        command = argv[3]
        if command == "download" and "--no-deps" in argv and "--find-links" not in argv:  # the probe
            return CommandResult(1 if self.sdist_only & set(argv) else 0, "", "ERROR: No matching distribution")
        if command == "wheel":
            wheel_dir = _option(argv, "--wheel-dir")
            for requirement in argv[argv.index(wheel_dir) + 1:]:
                name, version = requirement.split("==")
                with open(os.path.join(wheel_dir, "%s-%s-py3-none-any.whl" % (name, version)), "wb") as handle:
                    handle.write(b"built " + requirement.encode())
            return CommandResult(0)
        if self.fail_download:
            return CommandResult(1, "Collecting boto3==9.9\n", "ERROR: Could not find a version that satisfies "
                                 "the requirement boto3==9.9\nERROR: No matching distribution found for boto3==9.9\n")
        dest = _option(argv, "--dest")
        for requirement in [arg for arg in argv if "==" in arg]:
            for name in self.wheels.get(requirement, []):
                with open(os.path.join(dest, name), "wb") as handle:
                    handle.write(name.encode())
        return CommandResult(0)


WHEELS = {
    "six==1.16.0": ["six-1.16.0-py2.py3-none-any.whl"],
    "docopt==0.6.2": ["docopt-0.6.2-py3-none-any.whl"],
    "kafka-python==3.0.12": ["kafka_python-3.0.12-py2.py3-none-any.whl"],
}


def test_target_args_and_env_pick_the_nodes_python_and_only_the_index():
    assert pip_wheelhouse.target_args("3.8", ["manylinux2014_x86_64", "linux_x86_64"], "https://mirror/simple") == [
        "--only-binary=:all:", "--implementation", "cp", "--python-version", "3.8",
        "--index-url", "https://mirror/simple", "--platform=manylinux2014_x86_64", "--platform=linux_x86_64"]
    env = pip_wheelhouse.pip_env({"PIP_FIND_LINKS": "/opt/wheels", "PIP_CERT": "/ca.crt", "HOME": "/root"}, 42)
    assert env == {"PIP_FIND_LINKS": "", "PIP_EXTRA_INDEX_URL": "", "PIP_CONSTRAINT": "", "PIP_NO_INDEX": "false",
                   "PIP_REQUIRE_VIRTUALENV": "false", "SOURCE_DATE_EPOCH": "42", "PIP_CERT": "/ca.crt",
                   "HOME": "/root"}


def test_lock_text_pins_every_wheel_by_hash():
    sums = "%s  kafka_python-3.0.12-py2.py3-none-any.whl\n%s  six-1.16.0-py2.py3-none-any.whl\n" % ("a" * 64, "b" * 64)
    assert pip_wheelhouse.lock_text(sums) == (
        "kafka_python==3.0.12 --hash=sha256:%s\nsix==1.16.0 --hash=sha256:%s\n" % ("a" * 64, "b" * 64))
    with pytest.raises(ArtifactError, match="cannot read a name and version from wheel file six.whl"):
        pip_wheelhouse.lock_text("%s  six.whl\n" % ("c" * 64))


def _wheelhouse(tmp_path, pip, requirements=("six==1.16.0", "docopt==0.6.2"), check_mode=False):
    return pip_wheelhouse.ensure_wheelhouse(
        str(tmp_path / "wheels" / "deps"), list(requirements), "3.11", ["manylinux2014_x86_64"],
        invalidate=[str(tmp_path / "bundles" / "deps.tar")], check_mode=check_mode, run=pip,
        base_env={"PIP_FIND_LINKS": "/opt/wheels"})


def test_wheelhouse_is_built_once_with_lock_and_sums_then_left_alone(tmp_path):
    (tmp_path / "bundles").mkdir()
    (tmp_path / "bundles" / "deps.tar").write_text("old bundle")
    pip = FakePip(WHEELS, sdist_only=["docopt==0.6.2"])
    first = _wheelhouse(tmp_path, pip)
    dest = tmp_path / "wheels" / "deps"
    assert first["changed"] is True and first["reason"] == "request"
    assert first["built_from_sdist"] == ["docopt==0.6.2"]
    assert first["wheels"] == ["docopt-0.6.2-py3-none-any.whl", "six-1.16.0-py2.py3-none-any.whl"]
    assert first["invalidated"] == [str(tmp_path / "bundles" / "deps.tar")]
    assert not (tmp_path / "bundles" / "deps.tar").exists()
    assert _listing(dest) == [".request-" + first["request_id"], "SHA256SUMS", "docopt-0.6.2-py3-none-any.whl",
                              "requirements.lock", "six-1.16.0-py2.py3-none-any.whl"]
    lock = (dest / "requirements.lock").read_text().splitlines()
    assert [line.split(" ")[0] for line in lock] == ["docopt==0.6.2", "six==1.16.0"]
    assert all(re.search(r" --hash=sha256:[0-9a-f]{64}$", line) for line in lock)
    assert _no_leftovers(tmp_path / "wheels")
    # probe both (fails: docopt has no wheel), probe each, wheel, download; all with the
    # controller's find-links switched off
    assert [call[0][3] for call in pip.calls] == ["download", "download", "download", "wheel", "download"]
    assert all(call[1]["PIP_FIND_LINKS"] == "" and call[1]["SOURCE_DATE_EPOCH"] == "315532800" for call in pip.calls)

    again = FakePip({})
    second = _wheelhouse(tmp_path, again)
    assert (second["changed"], second["reason"], again.calls) == (False, "none", [])
    assert second["wheels"] == first["wheels"]


def test_wheelhouse_check_mode_reports_and_writes_nothing(tmp_path):
    pip = FakePip(WHEELS)
    result = _wheelhouse(tmp_path, pip, check_mode=True)
    assert (result["changed"], result["reason"], pip.calls) == (True, "request", [])
    assert result["diff"]["before"].endswith(": absent\n") and "built again for request" in result["diff"]["after"]
    assert os.listdir(tmp_path) == []


def test_a_changed_request_replaces_the_wheelhouse_whole(tmp_path):
    _wheelhouse(tmp_path, FakePip(WHEELS), requirements=["six==1.16.0"])
    result = _wheelhouse(tmp_path, FakePip(WHEELS), requirements=["kafka-python==3.0.12"])
    assert result["changed"] is True
    assert result["wheels"] == ["kafka_python-3.0.12-py2.py3-none-any.whl"]
    assert [name for name in _listing(tmp_path / "wheels" / "deps") if name.startswith(".request-")] == [
        ".request-" + result["request_id"]]


def test_a_failed_download_names_the_requirements_and_keeps_the_old_wheelhouse(tmp_path):
    first = _wheelhouse(tmp_path, FakePip(WHEELS), requirements=["six==1.16.0"])
    with pytest.raises(ArtifactError) as error:
        _wheelhouse(tmp_path, FakePip(WHEELS, fail_download=True), requirements=["six==1.16.0", "boto3==9.9"])
    message = str(error.value)
    assert "cannot download the wheels of six==1.16.0, boto3==9.9 for CPython 3.11 on manylinux2014_x86_64" in message
    assert message.endswith("No matching distribution found for boto3==9.9\nCollecting boto3==9.9")
    assert _listing(tmp_path / "wheels" / "deps") == [".request-" + first["request_id"], "SHA256SUMS",
                                                      "requirements.lock", "six-1.16.0-py2.py3-none-any.whl"]
    assert _no_leftovers(tmp_path / "wheels")


def test_an_sdist_that_does_not_build_is_named(tmp_path):
    def pip(argv, env=None, cwd=None):
        if argv[3] == "wheel":
            return CommandResult(1, "", "error: subprocess-exited-with-error\nNo module named 'numpy'\n")
        return CommandResult(1 if "--no-deps" in argv else 0)

    with pytest.raises(ArtifactError, match=r"requirement\(s\) pkg==1 have no wheel for CPython 3.11 .*\n"
                                            r".*\nNo module named 'numpy'"):
        _wheelhouse(tmp_path, pip, requirements=["pkg==1"])
    assert not (tmp_path / "wheels" / "deps").exists() and _no_leftovers(tmp_path / "wheels")


# --- pip_wheelhouse for another Python: markers and pinned sets --------------------------------

MARKED = ["kafka-python==3.0.12",
          'boto3==1.44.8; python_version >= "3.10"',
          'boto3==1.37.38; python_version < "3.9"',
          'urllib3==2.8.0; python_version >= "3.10"',
          "urllib3 == 1.26.20 ; python_version < '3.10'",
          'colorama==0.4.6; sys_platform == "win32"']


@pytest.mark.parametrize(("python_version", "expected"), [
    ("3.8", ["kafka-python==3.0.12", "boto3==1.37.38", "urllib3==1.26.20"]),
    ("3.9", ["kafka-python==3.0.12", "urllib3==1.26.20"]),
    ("3.11", ["kafka-python==3.0.12", "boto3==1.44.8", "urllib3==2.8.0"]),
])
def test_markers_are_evaluated_for_the_target_not_the_controller(python_version, expected):
    """The controller runs 3.10+ here: pip would take the >= "3.10" pins for every target."""
    assert wheel_requirements.target_requirements(MARKED, python_version, ["manylinux2014_x86_64"]) == expected


def test_the_target_environment_is_cpython_on_the_platforms_linux_machine():
    environment = wheel_requirements.target_environment("3.8", ["manylinux2014_aarch64"])
    assert {name: environment[name] for name in ("python_version", "python_full_version", "implementation_name",
                                                  "platform_python_implementation", "sys_platform",
                                                  "platform_machine")} == {
        "python_version": "3.8", "python_full_version": "3.8.0", "implementation_name": "cpython",
        "platform_python_implementation": "CPython", "sys_platform": "linux", "platform_machine": "aarch64"}
    with pytest.raises(ArtifactError, match="python_version '3' is not major.minor"):
        wheel_requirements.target_environment("3", [])


def test_two_requirements_of_one_project_for_the_target_are_refused():
    overlapping = ['boto3==1.44.8; python_version >= "3.9"', 'boto3==1.42.97; python_version < "3.10"']
    with pytest.raises(ArtifactError, match=r"'boto3==1.44.8; python_version >= \"3.9\"' and 'boto3==1.42.97; "
                                            r"python_version < \"3.10\"' both apply to CPython 3.9"):
        wheel_requirements.target_requirements(overlapping, "3.9", ["manylinux2014_x86_64"])
    with pytest.raises(ArtifactError, match="no requirement applies to CPython 3.8"):
        wheel_requirements.target_requirements(['six==1.17.0; python_version > "3.8"'], "3.8", [])
    with pytest.raises(ArtifactError, match="'six=1' is not a valid requirement"):
        wheel_requirements.target_requirements(["six=1"], "3.8", [])


def test_a_list_without_markers_keeps_its_request_and_a_pinned_set_names_its_mode():
    """The same marker file as before markers were read: an existing wheelhouse is not built again."""
    taken = wheel_requirements.target_requirements(["docopt==0.6.2", "six==1.16.0"], "3.11", ["manylinux2014_x86_64"])
    request = pip_wheelhouse.wheelhouse_request(taken, "3.11", ["manylinux2014_x86_64"], "https://pypi.org/simple")
    assert artifact_build.request_id(request) == "febd7e9a51fbd7e5670e2e9b262de0065e0d3661"
    assert pip_wheelhouse.wheelhouse_request(taken, "3.11", [], "i", "pinned")[-1] == "pinned"


def test_a_pinned_set_pins_one_version_of_each():
    wheel_requirements.check_pinned(["six==1.17.0", "kafka-python===3.0.12"])
    with pytest.raises(ArtifactError, match=r"requirement\(s\) boto3>=1.37, six==1.\*, urllib3 do not pin one "
                                            r"version \(name==version\)"):
        wheel_requirements.check_pinned(["boto3>=1.37", "six==1.*", "urllib3", "jmespath==1.0.1"])


def make_wheel(folder, name, version, requires=()):
    """A wheel as far as the check reads it: <name>-<version>.dist-info/METADATA."""
    path = os.path.join(str(folder), "%s-%s-py3-none-any.whl" % (name.replace("-", "_"), version))
    metadata = "Metadata-Version: 2.1\nName: %s\nVersion: %s\n%s\nbody\n" % (
        name, version, "".join("Requires-Dist: %s\n" % line for line in requires))
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("%s-%s.dist-info/METADATA" % (name.replace("-", "_"), version), metadata)
    return path


# What botocore 1.37.38 and boto3 1.37.38 declare (their METADATA on PyPI).
BOTOCORE_REQUIRES = ["jmespath (<2.0.0,>=0.7.1)", "python-dateutil (<3.0.0,>=2.1)",
                     'urllib3 (<1.27,>=1.25.4) ; python_version < "3.10"',
                     'urllib3 (!=2.2.0,<3,>=1.25.4) ; python_version >= "3.10"', "awscrt (==0.23.8) ; extra == 'crt'"]
BOTO3_REQUIRES = ["botocore (<1.38.0,>=1.37.38)", "jmespath (<2.0.0,>=0.7.1)", "s3transfer (<0.12.0,>=0.11.0)",
                  "botocore[crt] (<2.0a0,>=1.21.0) ; extra == 'crt'"]


def _boto_set(folder, urllib3="1.26.20", dateutil=True):
    make_wheel(folder, "boto3", "1.37.38", BOTO3_REQUIRES)
    make_wheel(folder, "botocore", "1.37.38", BOTOCORE_REQUIRES)
    make_wheel(folder, "s3transfer", "0.11.5", ["botocore (<2.0a.0,>=1.37.4)"])
    make_wheel(folder, "jmespath", "1.0.1")
    make_wheel(folder, "urllib3", urllib3)
    if dateutil:
        make_wheel(folder, "python-dateutil", "2.9.0.post0", ["six >=1.5"])
    make_wheel(folder, "six", "1.17.0")
    return ["boto3==1.37.38", "botocore==1.37.38", "s3transfer==0.11.5", "jmespath==1.0.1", "urllib3==%s" % urllib3,
            "six==1.17.0"] + (["python-dateutil==2.9.0.post0"] if dateutil else [])


def test_a_complete_pinned_set_has_no_unmet_dependency(tmp_path):
    pins = _boto_set(tmp_path)
    assert wheel_requirements.unmet_dependencies(str(tmp_path), pins, "3.8", ["manylinux2014_x86_64"]) == []


def test_unmet_dependencies_are_judged_by_the_targets_markers(tmp_path):
    """urllib3 2.2.3 is what pip resolves for 3.8 on a 3.11 controller; botocore wants 1.26 below 3.10."""
    pins = _boto_set(tmp_path, urllib3="2.2.3", dateutil=False)
    assert wheel_requirements.unmet_dependencies(str(tmp_path), pins, "3.8", ["manylinux2014_x86_64"]) == [
        "botocore 1.37.38 needs python-dateutil<3.0.0,>=2.1 on CPython 3.8, and the set has no python-dateutil",
        "botocore 1.37.38 needs urllib3<1.27,>=1.25.4 on CPython 3.8, and the set has urllib3 2.2.3"]
    # The same wheels for 3.10: urllib3 2.2.3 is in botocore's range there.
    assert wheel_requirements.unmet_dependencies(str(tmp_path), pins, "3.10", ["manylinux2014_x86_64"]) == [
        "botocore 1.37.38 needs python-dateutil<3.0.0,>=2.1 on CPython 3.10, and the set has no python-dateutil"]


def test_an_extra_asked_for_brings_its_dependencies(tmp_path):
    """boto3[crt] asks botocore[crt], whose crt extra needs awscrt; without the extra nothing does."""
    pins = _boto_set(tmp_path)
    assert wheel_requirements.unmet_dependencies(str(tmp_path), pins[1:] + ["boto3[crt]==1.37.38"], "3.8", []) == [
        "botocore 1.37.38 needs awscrt==0.23.8 on CPython 3.8, and the set has no awscrt"]


class FakePinnedPip(object):
    """pip download --no-deps of exact pins: one real (small) wheel per pin, from a catalogue."""

    def __init__(self, catalogue):
        self.catalogue = catalogue  # "name==version" -> Requires-Dist lines
        self.calls = []

    def __call__(self, argv, env=None, cwd=None):
        self.calls.append(list(argv))
        assert "--no-deps" in argv
        dest = _option(argv, "--dest")
        for requirement in [arg for arg in argv if "==" in arg]:
            name, version = requirement.split("==")
            make_wheel(dest, name, version, self.catalogue[requirement])
        return CommandResult(0)


def test_a_pinned_wheelhouse_takes_the_targets_pins_exactly_and_checks_them(tmp_path):
    catalogue = {"kafka-python==3.0.12": [], "six==1.17.0": [], "urllib3==1.26.20": [],
                 "requests==2.32.3": ['urllib3<3,>=1.21.1; python_version >= "3.8"', "idna<4,>=2.5"]}
    pip = FakePinnedPip(catalogue)
    requirements = ["kafka-python==3.0.12", 'six==1.17.0; python_version < "3.9"',
                    'urllib3==1.26.20; python_version < "3.10"', "requests==2.32.3"]
    with pytest.raises(ArtifactError, match=r"the pinned set for CPython 3.8 is not complete: requests 2.32.3 needs "
                                            r"idna<4,>=2.5 on CPython 3.8, and the set has no idna. Pin each of them"):
        pip_wheelhouse.ensure_wheelhouse(str(tmp_path / "deps"), requirements, "3.8", dependencies="pinned", run=pip)
    assert not (tmp_path / "deps").exists() and _no_leftovers(tmp_path)
    download = pip.calls[-1]
    assert download[3:5] == ["download", "--no-deps"]
    assert [arg for arg in download if "==" in arg] == ["kafka-python==3.0.12", "six==1.17.0", "urllib3==1.26.20",
                                                       "requests==2.32.3"]

    catalogue["idna==3.10"] = []
    result = pip_wheelhouse.ensure_wheelhouse(str(tmp_path / "deps"), requirements + ["idna==3.10"], "3.8",
                                              dependencies="pinned", run=FakePinnedPip(catalogue))
    assert result["changed"] is True
    assert result["requirements"] == ["kafka-python==3.0.12", "six==1.17.0", "urllib3==1.26.20", "requests==2.32.3",
                                      "idna==3.10"]
    assert [line.split(" ")[0] for line in (tmp_path / "deps" / "requirements.lock").read_text().splitlines()] == [
        "idna==3.10", "kafka_python==3.0.12", "requests==2.32.3", "six==1.17.0", "urllib3==1.26.20"]
    # For 3.11 other pins apply: another request, so another wheelhouse (here: the same folder, built again).
    eleven = pip_wheelhouse.ensure_wheelhouse(str(tmp_path / "deps"), requirements + ["idna==3.10"], "3.11",
                                              dependencies="pinned", check_mode=True, run=FakePinnedPip(catalogue))
    assert eleven["changed"] is True and eleven["request_id"] != result["request_id"]
    assert eleven["requirements"] == ["kafka-python==3.0.12", "requests==2.32.3", "idna==3.10"]


def test_a_pinned_set_refuses_a_loose_requirement_before_any_download(tmp_path):
    pip = FakePinnedPip({})
    with pytest.raises(ArtifactError, match=r"requirement\(s\) boto3>=1 do not pin one version"):
        pip_wheelhouse.ensure_wheelhouse(str(tmp_path / "deps"), ["boto3>=1"], "3.8", dependencies="pinned", run=pip)
    assert pip.calls == [] and os.listdir(tmp_path) == []


# --- maven_artifacts ------------------------------------------------------------------------

JUNIT_POM = """\
<?xml version="1.0" encoding="UTF-8"?>
<!-- Ansible managed: resolves the jar set junit-4.13.2 with its runtime dependencies. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>customer-streaming-pipeline.artifacts</groupId>
  <artifactId>junit-4.13.2</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <repositories>
    <!-- Same id as Maven's default so this URL replaces it (mirror, Artifactory). -->
    <repository>
      <id>central</id>
      <url>https://repo1.maven.org/maven2</url>
    </repository>
  </repositories>
  <pluginRepositories>
    <pluginRepository>
      <id>central</id>
      <url>https://repo1.maven.org/maven2</url>
    </pluginRepository>
  </pluginRepositories>
  <dependencies>
    <dependency>
      <groupId>junit</groupId>
      <artifactId>junit</artifactId>
      <version>4.13.2</version>
    </dependency>
  </dependencies>
</project>
"""


def test_render_pom_is_the_pom_the_role_templated_before():
    assert maven_artifacts.render_pom("junit-4.13.2", ["junit:junit:4.13.2"], [],
                                      "https://repo1.maven.org/maven2") == JUNIT_POM


def test_render_pom_excludes_from_every_dependency_and_escapes():
    pom = maven_artifacts.render_pom("set 1", ["a:b:1", "c:d:2"], ["x:y"], "https://h/r?a=1&b=2")
    assert "<artifactId>set_1</artifactId>" in pom
    assert pom.count("<exclusion>\n          <groupId>x</groupId>\n          <artifactId>y</artifactId>") == 2
    assert "<url>https://h/r?a=1&amp;b=2</url>" in pom


@pytest.mark.parametrize(
    ("artifacts", "excludes", "message"),
    [
        ([], [], "no artifacts given"),
        (["junit:junit"], [], r"artifact\(s\) junit:junit are not groupId:artifactId:version"),
        (["a:b:1", "a:b:c:d"], [], r"artifact\(s\) a:b:c:d are not"),
        (["a:b:1"], ["x"], r"exclude\(s\) x are not groupId:artifactId"),
    ],
)
def test_bad_coordinates_are_refused_by_name(artifacts, excludes, message):
    with pytest.raises(ArtifactError, match=message):
        maven_artifacts.check_coordinates(artifacts, excludes)


def test_maven_argv_enforces_checksums_and_picks_transitivity():
    argv = maven_artifacts.maven_argv("mvn -s /etc/m2.xml", "/c/s.pom.xml", "/root/.m2/repository", False, "/c/s")
    assert argv == ["mvn", "-s", "/etc/m2.xml", "-B", "-q", "-C", "-f", "/c/s.pom.xml",
                    "-Dmaven.repo.local=/root/.m2/repository", "dependency:copy-dependencies",
                    "-DincludeScope=runtime", "-DexcludeTransitive=true", "-DoutputDirectory=/c/s"]
    assert "-DexcludeTransitive=false" in maven_artifacts.maven_argv("mvn", "p", None, True, "o")


class FakeMaven(object):
    def __init__(self, jars, rc=0, stdout=""):
        self.jars, self.rc, self.stdout = jars, rc, stdout
        self.calls = []

    def __call__(self, argv, env=None, cwd=None):
        self.calls.append(list(argv))
        with open(_option(argv, "-f")) as handle:
            self.pom = handle.read()
        if self.rc:
            return CommandResult(self.rc, self.stdout, "")
        out = next(arg for arg in argv if arg.startswith("-DoutputDirectory=")).split("=", 1)[1]
        for name in self.jars:
            with open(os.path.join(out, name), "wb") as handle:
                handle.write(name.encode())
        return CommandResult(0)


def _jars(tmp_path, maven, check_mode=False, **kwargs):
    kwargs.setdefault("artifacts", ["junit:junit:4.13.2"])
    return maven_artifacts.ensure_artifacts(
        str(tmp_path / "maven" / "junit-4.13.2"), invalidate=[str(tmp_path / "bundles" / "junit-4.13.2.tar")],
        check_mode=check_mode, run=maven, **kwargs)


def test_jar_set_is_resolved_once_with_sums_and_pom_then_left_alone(tmp_path):
    (tmp_path / "bundles").mkdir()
    (tmp_path / "bundles" / "junit-4.13.2.tar").write_text("old")
    maven = FakeMaven(["junit-4.13.2.jar", "hamcrest-core-1.3.jar"])
    first = _jars(tmp_path, maven)
    dest = tmp_path / "maven" / "junit-4.13.2"
    assert (first["changed"], first["reason"]) == (True, "request")
    assert first["request_id"] == "c16fdba09f9633bab249fa25efb6ecd87b4e312d"
    assert first["jars"] == ["hamcrest-core-1.3.jar", "junit-4.13.2.jar"]
    assert maven.pom == JUNIT_POM and (tmp_path / "maven" / "junit-4.13.2.pom.xml").read_text() == JUNIT_POM
    assert _listing(dest) == [".request-" + first["request_id"], "SHA256SUMS", "hamcrest-core-1.3.jar",
                              "junit-4.13.2.jar"]
    assert (dest / "SHA256SUMS").read_text().splitlines()[1].endswith("  junit-4.13.2.jar")
    assert not (tmp_path / "bundles" / "junit-4.13.2.tar").exists()
    assert _no_leftovers(tmp_path / "maven")

    again = FakeMaven([])
    second = _jars(tmp_path, again)
    assert (second["changed"], second["reason"], again.calls) == (False, "none", [])

    moved = _jars(tmp_path, again, repository_url="https://artifactory.example/maven")
    assert (moved["changed"], moved["reason"], again.calls) == (True, "pom", [])
    assert "artifactory.example" in (tmp_path / "maven" / "junit-4.13.2.pom.xml").read_text()


def test_jar_set_check_mode_reports_and_writes_nothing(tmp_path):
    maven = FakeMaven(["junit-4.13.2.jar"])
    result = _jars(tmp_path, maven, check_mode=True)
    assert (result["changed"], result["reason"], maven.calls) == (True, "request", [])
    assert os.listdir(tmp_path) == []


def test_a_failed_resolution_shows_mavens_errors_and_changes_nothing(tmp_path):
    maven = FakeMaven([], rc=1, stdout="[INFO] x\n\x1b[1;31m[ERROR]\x1b[m Could not find artifact junit:junit:jar:0.0\n")
    with pytest.raises(ArtifactError) as error:
        _jars(tmp_path, maven, artifacts=["junit:junit:0.0"])
    assert str(error.value).startswith("Maven could not resolve junit:junit:0.0: mvn -B -q -C -f ")
    assert str(error.value).endswith("exited with 1\n[INFO] x\n[ERROR] Could not find artifact junit:junit:jar:0.0")
    assert os.listdir(tmp_path / "maven") == []


# --- project_wheel ---------------------------------------------------------------------------


class FakeWheelBuild(object):
    """pip wheel of a project: the wheel's bytes are the source it was given (reproducible)."""

    def __init__(self, project, rc=0):
        self.project, self.rc = project, rc
        self.calls = []

    def __call__(self, argv, env=None, cwd=None):
        self.calls.append((list(argv), dict(env or {})))
        if self.rc:
            return CommandResult(self.rc, "", "ERROR: invalid pyproject.toml\n")
        wheel_dir = _option(argv, "--wheel-dir")
        os.makedirs(wheel_dir)
        # The module hands pip a clean copy of the sources, never the project folder itself.
        built_from = Path(argv[-1])
        assert built_from != self.project and not (built_from / "build").exists()
        source = (built_from / "src" / "proj" / "__init__.py").read_bytes()
        with open(os.path.join(wheel_dir, "proj-0.1.0-py3-none-any.whl"), "wb") as handle:
            handle.write(source)
        return CommandResult(0)


@pytest.fixture
def project(tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "pyproject.toml").write_text("[project]\nname = 'proj'\n")
    (folder / "src" / "proj").mkdir(parents=True)
    (folder / "src" / "proj" / "__init__.py").write_text("A = 1\n")
    # Left by an earlier in-tree build: must not reach the wheel.
    (folder / "build" / "lib" / "proj").mkdir(parents=True)
    (folder / "build" / "lib" / "proj" / "stale.py").write_text("GONE = 1\n")
    (tmp_path / "cache" / "bundles").mkdir(parents=True)
    return folder


def _wheel(tmp_path, project, build, check_mode=False):
    return project_wheel.ensure_wheel(str(project), str(tmp_path / "cache" / "wheels" / "proj"), "python3",
                                      invalidate=[str(tmp_path / "cache" / "bundles" / "proj.tar")],
                                      check_mode=check_mode, run=build, base_env={"PIP_FIND_LINKS": "/opt/wheels"})


def test_wheel_replaces_the_cached_one_only_when_its_bytes_differ(tmp_path, project):
    bundle = tmp_path / "cache" / "bundles" / "proj.tar"
    build = FakeWheelBuild(project)
    first = _wheel(tmp_path, project, build)
    assert (first["changed"], first["wheel"]) == (True, "proj-0.1.0-py3-none-any.whl")
    argv, env = build.calls[0]
    assert argv[:6] == ["python3", "-m", "pip", "wheel", "--quiet", "--no-deps"]
    assert not os.path.exists(argv[-1])  # the copy went with the staging folder
    assert (env["SOURCE_DATE_EPOCH"], env["PIP_FIND_LINKS"]) == ("315532800", "")

    bundle.write_text("packed")
    second = _wheel(tmp_path, project, build)
    assert (second["changed"], second["sha256"], second["invalidated"]) == (False, first["sha256"], [])
    assert bundle.exists()

    (project / "src" / "proj" / "__init__.py").write_text("A = 2\n")
    checked = _wheel(tmp_path, project, build, check_mode=True)
    assert (checked["changed"], checked["invalidated"]) == (True, [str(bundle)])
    assert checked["diff"]["before"] != checked["diff"]["after"]
    assert (tmp_path / "cache" / "wheels" / "proj" / "proj-0.1.0-py3-none-any.whl").read_bytes() == b"A = 1\n"
    assert bundle.exists() and _listing(tmp_path / "cache" / "wheels") == ["proj"]

    third = _wheel(tmp_path, project, build)
    assert (third["changed"], third["invalidated"]) == (True, [str(bundle)])
    assert (tmp_path / "cache" / "wheels" / "proj" / "proj-0.1.0-py3-none-any.whl").read_bytes() == b"A = 2\n"
    assert not bundle.exists() and _no_leftovers(tmp_path / "cache" / "wheels")


def test_a_failed_wheel_build_shows_pips_error_and_keeps_the_old_wheel(tmp_path, project):
    _wheel(tmp_path, project, FakeWheelBuild(project))
    with pytest.raises(ArtifactError, match=r"cannot build the wheel of .*project: python3 -m pip wheel .* "
                                            r"exited with 1\nERROR: invalid pyproject.toml"):
        _wheel(tmp_path, project, FakeWheelBuild(project, rc=1))
    assert _listing(tmp_path / "cache" / "wheels" / "proj") == ["proj-0.1.0-py3-none-any.whl"]
    assert _no_leftovers(tmp_path / "cache" / "wheels")


def test_a_folder_without_pyproject_is_not_a_project(tmp_path):
    with pytest.raises(ArtifactError, match="has no pyproject.toml"):
        project_wheel.ensure_wheel(str(tmp_path), str(tmp_path / "out"), run=FakeWheelBuild(tmp_path))


# --- main(): argument handling, check mode, diff ------------------------------------------


def _run_main(module, args, capsys):
    patch_module_args = pytest.importorskip("ansible.module_utils.testing").patch_module_args
    with patch_module_args(args), pytest.raises(SystemExit):
        module.main()
    return json.loads(capsys.readouterr().out)


def test_pip_wheelhouse_main_check_diff_then_build(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(pip_wheelhouse, "run_command", FakePip(WHEELS))
    args = {"dest": str(tmp_path / "deps"), "requirements": ["six==1.16.0"], "python_version": "3.11"}
    checked = _run_main(pip_wheelhouse, dict(args, _ansible_check_mode=True, _ansible_diff=True), capsys)
    assert (checked["changed"], checked["reason"], checked["wheels"]) == (True, "request", [])
    assert checked["diff"]["before"] == "%s: absent\n" % (tmp_path / "deps")
    built = _run_main(pip_wheelhouse, args, capsys)
    again = _run_main(pip_wheelhouse, args, capsys)
    assert (built["changed"], again["changed"]) == (True, False)
    assert "diff" not in again and again["wheels"] == ["six-1.16.0-py2.py3-none-any.whl"]


def test_maven_artifacts_main_fails_with_the_set_and_the_coordinate(tmp_path, capsys):
    result = _run_main(maven_artifacts, {"dest": str(tmp_path / "jars"), "artifacts": ["junit"]}, capsys)
    assert result["failed"] is True
    assert result["msg"] == "jar set %s: artifact(s) junit are not groupId:artifactId:version" % (tmp_path / "jars")


def test_project_wheel_main_reports_the_wheel(tmp_path, project, monkeypatch, capsys):
    monkeypatch.setattr(project_wheel, "run_command", FakeWheelBuild(project))
    args = {"project_dir": str(project), "dest": str(tmp_path / "wheel"), "_ansible_diff": True}
    built = _run_main(project_wheel, args, capsys)
    assert (built["changed"], built["wheel"]) == (True, "proj-0.1.0-py3-none-any.whl")
    assert built["diff"]["after"].startswith("%s:\n  proj-0.1.0-py3-none-any.whl  sha256:" % (tmp_path / "wheel"))
    assert _run_main(project_wheel, args, capsys)["changed"] is False
