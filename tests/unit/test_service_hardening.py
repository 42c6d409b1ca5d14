"""The _service role's hardening drop-in holds only what the node's systemd knows.

The template roles/_service/templates/hardening.conf.j2 is rendered with plain Jinja2 (as the
template module renders it: trim_blocks) for several systemd versions and checked against the
version table in roles/_service/vars/main.yml, and against fixed expectations: CentOS 7's
systemd 219 (HDP) gets only options 219 knows, and the sandbox's systemd 252 gets at least
every option the former service_hardening role wrote (the `systemd-analyze security` score of
both pipeline units, 1.1 OK, depends on them).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, List, Tuple

import jinja2
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "_service"
TABLE = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())["__service_hardening_options"]
DEFAULTS = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())

# The drop-in the service_hardening role wrote for customer-stream.service (JVM: W^X memory,
# AF_NETLINK, its state folder) until it became _service: systemd 252 must get all of it.
BEFORE_STREAM_252 = """\
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths=/var/lib/customer-stream
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
PrivateUsers=yes
ProtectHostname=yes
ProtectClock=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectProc=invisible
ProcSubset=pid
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=no
RemoveIPC=yes
UMask=0027
CapabilityBoundingSet=
AmbientCapabilities=
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged @resources @mount @swap @reboot @raw-io @module @obsolete @debug @cpu-emulation
SystemCallErrorNumber=EPERM
DevicePolicy=closed
KeyringMode=private
""".splitlines()

# What CentOS 7's systemd 219 reads from the same service's drop-in, and nothing else.
EXPECTED_STREAM_219 = """\
NoNewPrivileges=yes
ProtectSystem=full
ReadWriteDirectories=/var/lib/customer-stream
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
UMask=0027
CapabilityBoundingSet=
SystemCallArchitectures=native
SystemCallErrorNumber=EPERM
DevicePolicy=closed
""".splitlines()

# Options systemd 219 does not know (or values it cannot parse), from systemd's NEWS.
UNKNOWN_TO_219 = ("ProtectSystem=strict", "ReadWritePaths=", "PrivateUsers=", "ProtectHostname=", "ProtectClock=",
                  "ProtectKernelTunables=", "ProtectKernelModules=", "ProtectKernelLogs=", "ProtectControlGroups=",
                  "ProtectProc=", "ProcSubset=", "RestrictNamespaces=", "RestrictRealtime=", "RestrictSUIDSGID=",
                  "LockPersonality=", "MemoryDenyWriteExecute=", "RemoveIPC=", "AmbientCapabilities=",
                  "SystemCallFilter=", "KeyringMode=")

STREAM = {"_service_name": "customer-stream", "_service_read_write_paths": ["/var/lib/customer-stream"],
          "_service_address_families": ["AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"],
          "_service_allow_wx_memory": True}


def render(version: int, **service) -> List[str]:
    """The drop-in's option lines (comments and the section header left out)."""
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(str(ROLE / "templates")), trim_blocks=True,
                                     undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    variables = dict(DEFAULTS, ansible_managed="managed", __service_hardening_options=TABLE,
                     __service_systemd_version=str(version), **service)
    text = environment.get_template("hardening.conf.j2").render(**variables)
    lines = text.splitlines()
    assert lines[0] == "# managed" and "[Service]" in lines
    return [line for line in lines[lines.index("[Service]") + 1:]]


def since_of(line: str) -> int:
    """The version the table gives for an option line (entry or fallback that wrote it)."""
    name, _, value = line.partition("=")
    for entry in TABLE:
        candidates: List[Tuple[str, Dict]] = [(entry["option"], entry)]
        if "fallback" in entry:
            candidates.append((entry["fallback"].get("option", entry["option"]), entry["fallback"]))
        for option, variant in candidates:
            fixed = variant.get("value", entry.get("value"))
            if option == name and (fixed is None or str(fixed) == value):
                return int(variant["since"])
    raise AssertionError("%s is not in the table" % line)


def test_the_table_is_well_formed():
    for entry in TABLE:
        assert re.fullmatch(r"[A-Z][A-Za-z]+", entry["option"]), entry
        assert 180 <= int(entry["since"]) <= 260, entry
        if "fallback" in entry:
            assert int(entry["fallback"]["since"]) < int(entry["since"]), entry
    # The options with a per-service value carry no fixed one.
    assert {e["option"] for e in TABLE if "value" not in e} == {
        "ReadWritePaths", "RestrictAddressFamilies", "MemoryDenyWriteExecute"}


@pytest.mark.parametrize("version", [219, 229, 232, 235, 239, 242, 245, 247, 252, 257])
def test_every_option_written_is_known_to_that_systemd(version):
    lines = render(version, **STREAM)
    assert lines, version
    for line in lines:
        assert since_of(line) <= version, "%s written for systemd %d" % (line, version)
    # And every option of the table the version knows is written (none forgotten).
    written = {line.partition("=")[0] for line in lines}
    known = {e["option"] for e in TABLE if int(e["since"]) <= version}
    assert known - {"ReadWritePaths"} <= written, known - written


def test_systemd_219_gets_only_what_it_knows():
    lines = render(219, **STREAM)
    assert lines == EXPECTED_STREAM_219
    assert [line for line in lines if line.startswith(UNKNOWN_TO_219)] == []


def test_systemd_252_gets_everything_the_former_role_wrote():
    assert render(252, **STREAM) == BEFORE_STREAM_252


def test_the_service_decides_paths_families_and_wx_memory():
    producer = render(252, _service_name="customer-producer", _service_read_write_paths=[])
    assert not [line for line in producer if line.startswith("ReadWritePaths=")]
    assert "MemoryDenyWriteExecute=yes" in producer
    assert "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6" in producer
    # Everything else is the same for every service.
    assert [line for line in producer if not line.startswith(("MemoryDeny", "RestrictAddress"))] == [
        line for line in BEFORE_STREAM_252 if not line.startswith(("MemoryDeny", "RestrictAddress", "ReadWrite"))]
    hdfs = render(252, _service_name="hdfs-datanode", _service_read_write_paths=["/var/lib/hdfs", "/var/log/hdfs"])
    assert [line for line in hdfs if line.startswith("ReadWrite")] == [
        "ReadWritePaths=/var/lib/hdfs", "ReadWritePaths=/var/log/hdfs"]
