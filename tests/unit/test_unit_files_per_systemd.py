"""The pipeline's unit files hold only what the node's systemd knows, in the section it reads.

Every unit template of the pipeline's roles is rendered with plain Jinja2 (as the template
module renders it: trim_blocks) from the roles' defaults and vars, _service's vars and an
inventory's group_vars, for CentOS 7's systemd 219 (HDP) and the sandbox's systemd 252. Each
`Key=value` line is checked against the table __service_unit_options in
roles/_service/vars/main.yml: the option must be in the table (an option missing from it fails
the test), in that section, with a value the entry covers, and known to that systemd version.
On 252 the units are byte for byte the ones written in this file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Set, Tuple

import jinja2
import jinja2.meta
import jinja2.nativetypes
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SERVICE = ROOT / "roles" / "_service"
SERVICE_VARS = yaml.safe_load((SERVICE / "vars" / "main.yml").read_text())
TABLE: List[Dict[str, Any]] = SERVICE_VARS["__service_unit_options"]

# The pipeline roles' unit templates (a role installs its unit through _service's unit.yml).
UNITS = {"customer-producer": ROOT / "roles" / "customer_producer" / "templates" / "customer-producer.service.j2",
         "customer-stream": ROOT / "roles" / "customer_stream" / "templates" / "customer-stream.service.j2"}
ROLE_OF = {"customer-producer": "customer_producer", "customer-stream": "customer_stream"}

# Inventories the units are rendered for: the one-node sandbox (local master, client mode),
# the three-node one (YARN, cluster mode) and the HDP example in both deploy modes. Values an
# inventory takes from a play (groups, hostvars) are given here.
SANDBOX_GROUPS = {"yarn_nodemanagers": [], "yarn_resourcemanager": []}
SANDBOX3_GROUPS = {"yarn_nodemanagers": ["csp-node2", "csp-node3"], "yarn_resourcemanager": ["csp-node1"]}
CASES: Dict[str, Tuple[List[str], Dict[str, Any]]] = {
    "sandbox": (["sandbox"], {"groups": SANDBOX_GROUPS}),
    "sandbox3": (["sandbox", "sandbox3"], {"groups": SANDBOX3_GROUPS,
                                          "hostvars": {"csp-node1": {"sandbox_node_machine_name": "csp-node1"}}}),
    "hdp-client": (["hdp-example"], {}),
    "hdp-cluster": (["hdp-example"], {"customer_stream_deploy_mode": "cluster"}),
}
# What a play gives the templates besides the variables: the jars jars.yml found.
RUNTIME = {"ansible_managed": "Ansible managed",
           "__customer_stream_jars": {"files": [{"path": "/opt/customer-pipeline/jars/spark-sql-kafka.jar"},
                                                {"path": "/opt/customer-pipeline/jars/kafka-clients.jar"}]}}

# The units the roles write for the one-node sandbox on systemd 252, byte for byte: the
# sandbox runs exactly these (a change here is a change to every deployed node).
EXPECTED_PRODUCER_252 = """\
# Ansible managed
[Unit]
Description=Customer pipeline producer: CSV objects in s3://customers/incoming/ into Kafka topic customers-raw
Documentation=file:///etc/customer-pipeline/producer.ini
After=network-online.target kafka.service seaweedfs.service
Wants=network-online.target
# No start limit: the restart back-off in ExecStart= spaces the restarts out and never gives up.
StartLimitIntervalSec=0

[Service]
Type=simple
User=customer-producer
Group=customer-producer
EnvironmentFile=/etc/customer-pipeline/producer.env
Environment=PYTHONUNBUFFERED=1
# The restart back-off (role _service's files/restart-backoff) waits when this start follows
# quick failures, then becomes the producer: 10 s, twice that for each further start in
# a row, at most 300 s; a run of 600 s starts over.
ExecStart=/usr/local/lib/customer-pipeline/restart-backoff --state /var/lib/customer-producer/restart-backoff \\
  --first 10 --max 300 --healthy 600 --floor 10 -- \\
  /opt/customer-pipeline/producer/venv/bin/python -m customer_pipeline.producer --config /etc/customer-pipeline/producer.ini
# A clean stop (exit 0: systemctl stop, a deploy's restart) forgets the back-off.
ExecStopPost=/bin/sh -c '[ "$$SERVICE_RESULT" != success ] || rm -f /var/lib/customer-producer/restart-backoff'
# SIGTERM: the producer commits its open transaction and exits 0.
KillSignal=SIGTERM
TimeoutStopSec=60
Restart=on-failure
RestartSec=10
# Exit 2 is a wrong setting: restarting cannot fix it.
RestartPreventExitStatus=2
SyslogIdentifier=customer-producer
# Hardening: the drop-in customer-producer.service.d/10-hardening.conf (role _service).

[Install]
WantedBy=multi-user.target
"""

EXPECTED_STREAM_252 = """\
# Ansible managed
[Unit]
Description=Customer pipeline Spark job: Kafka topic customers-raw into HDFS and topics customers-usa, customers-alerts
Documentation=file:///etc/customer-pipeline/stream.ini
After=network-online.target kafka.service hdfs-namenode.service hdfs-datanode.service
Wants=network-online.target
# No start limit: the restart back-off in ExecStart= spaces the restarts out and never gives up.
StartLimitIntervalSec=0

[Service]
Type=simple
User=customer-stream
Group=customer-stream
EnvironmentFile=/etc/customer-pipeline/stream.env
Environment=HADOOP_USER_NAME=maria_dev
Environment=HOME=/var/lib/customer-stream
Environment=SPARK_LOCAL_DIRS=/var/lib/customer-stream/spark
Environment=PYTHONUNBUFFERED=1
WorkingDirectory=/var/lib/customer-stream
# The restart back-off (role _service's files/restart-backoff) waits when this start follows
# quick failures, then becomes the command: 15 s, twice that for each further start in a
# row, at most 300 s; a run of 600 s starts over.
ExecStart=/usr/local/lib/customer-pipeline/restart-backoff --state /var/lib/customer-stream/restart-backoff \\
  --first 15 --max 300 --healthy 600 --floor 15 -- \\
  /usr/local/bin/spark-submit \\
  --master local[2] \\
  --deploy-mode client \\
  --name customer-stream \\
  --driver-memory 1g \\
  --jars /opt/customer-pipeline/jars/kafka-clients.jar,/opt/customer-pipeline/jars/spark-sql-kafka.jar \\
  --py-files /opt/customer-pipeline/stream/customer_pipeline.zip \\
  --conf spark.sql.shuffle.partitions=2 \\
  --conf spark.ui.enabled=false \\
  /opt/customer-pipeline/stream/run_stream_job.py --config /etc/customer-pipeline/stream.ini
# A graceful stop signals the Python driver, not spark-submit's JVM (which would die at
# once): the job finishes its micro-batch, stops the query and exits 0, and the JVM with
# it; on YARN in client mode the application ends with the driver. Whatever is left after
# TimeoutStopSec is killed. ("+": the stop command runs outside the sandbox, which hides
# the driver from it.)
ExecStop=+/bin/sh -c 'pkill -TERM -u customer-stream -f "^[^ ]*python[0-9.]* /opt/customer-pipeline/stream/run_stream_job.py" || exit 0; while kill -0 $MAINPID 2>/dev/null; do sleep 1; done'
KillMode=mixed
TimeoutStopSec=120
Restart=on-failure
RestartSec=15
# Exit 2 is a wrong setting: restarting cannot fix it.
RestartPreventExitStatus=2
# A clean stop (exit 0: systemctl stop, a deploy's restart) forgets the back-off.
ExecStopPost=/bin/sh -c '[ "$$SERVICE_RESULT" != success ] || rm -f /var/lib/customer-stream/restart-backoff'
SyslogIdentifier=customer-stream
# Hardening: the drop-in customer-stream.service.d/10-hardening.conf (role _service).

[Install]
WantedBy=multi-user.target
"""


def ansible_filters() -> Dict[str, Any]:
    """The few Ansible filters the roles' variables and unit templates use."""
    def combine(*dicts: Dict[str, Any]) -> Dict[str, Any]:
        merged: Dict[str, Any] = {}
        for item in dicts:
            merged.update(item)
        return merged

    def to_bool(value: Any) -> bool:
        return value if isinstance(value, bool) else str(value).lower() in ("yes", "on", "1", "true")

    return {"combine": combine, "bool": to_bool}


def environment(native: bool = False) -> jinja2.Environment:
    """Jinja2 as the template module sets it up: trim_blocks, the trailing newline kept."""
    kind = jinja2.nativetypes.NativeEnvironment if native else jinja2.Environment
    env = kind(trim_blocks=True, keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    env.filters.update(ansible_filters())
    return env


class Variables:
    """Role defaults < inventory group_vars < role vars < play values, templated on demand as Ansible does."""

    def __init__(self, role: str, inventories: List[str], play: Dict[str, Any]) -> None:
        self.raw: Dict[str, Any] = {}
        for path in [SERVICE / "defaults" / "main.yml", ROOT / "roles" / role / "defaults" / "main.yml"]:
            self.raw.update(yaml.safe_load(path.read_text()) or {})
        for inventory in inventories:
            for path in sorted((ROOT / "inventory" / inventory / "group_vars" / "all").glob("*.yml")):
                self.raw.update(yaml.safe_load(path.read_text()) or {})
        for path in [SERVICE / "vars" / "main.yml", ROOT / "roles" / role / "vars" / "main.yml"]:
            self.raw.update(yaml.safe_load(path.read_text()) or {})
        self.raw.update(play)
        self.env = environment(native=True)
        self.done: Dict[str, Any] = {}

    def value(self, name: str) -> Any:
        if name not in self.done:
            self.done[name] = self.template(self.raw[name])
        return self.done[name]

    def template(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {key: self.template(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.template(item) for item in value]
        if not isinstance(value, str) or not ("{{" in value or "{%" in value):
            return value
        names = jinja2.meta.find_undeclared_variables(self.env.parse(value))
        return self.env.from_string(value).render(**self.context(names))

    def context(self, names: Set[str]) -> Dict[str, Any]:
        """The named variables that exist (an absent one stays undefined for default())."""
        return {name: self.value(name) for name in names if name in self.raw}


def render(unit: str, case: str, version: int) -> str:
    inventories, play = CASES[case]
    variables = Variables(ROLE_OF[unit], inventories, dict(play, **RUNTIME, __service_systemd_version=version))
    env = environment()
    template = env.from_string(UNITS[unit].read_text())
    names = jinja2.meta.find_undeclared_variables(env.parse(UNITS[unit].read_text()))
    return template.render(**variables.context(names))


def options(text: str) -> Iterator[Tuple[str, str, str]]:
    """(section, option, value) of every `Key=value` line, continuation lines joined; comments skipped."""
    section: Optional[str] = None
    lines = iter(text.splitlines())
    for line in lines:
        if not line.strip() or line.startswith(("#", ";")):
            continue
        header = re.fullmatch(r"\[([A-Za-z]+)\]", line)
        if header:
            section = header.group(1)
            continue
        while line.endswith("\\"):
            line = line[:-1] + " " + next(lines).strip()
        assert section is not None and re.match(r"[A-Z][A-Za-z]*=", line), "not an option line: %r" % line
        option, _, value = line.partition("=")
        yield section, option, value


def variants() -> Iterator[Tuple[str, str, Optional[str], int]]:
    """Each table entry and its fallback as (section, option, value pattern, since)."""
    for entry in TABLE:
        yield entry["section"], entry["option"], entry.get("value"), int(entry["since"])
        if "fallback" in entry:
            fallback = entry["fallback"]
            yield (fallback.get("section", entry["section"]), fallback.get("option", entry["option"]),
                   fallback.get("value", entry.get("value")), int(fallback["since"]))


def since_of(section: str, option: str, value: str) -> int:
    """The first systemd version that reads this line; fails for a line the table does not cover."""
    matches = [since for s, o, pattern, since in variants()
               if (s, o) == (section, option) and (pattern is None or re.fullmatch(pattern, value))]
    assert matches, "%s=%s in [%s] is not in __service_unit_options (roles/_service/vars/main.yml)" % (
        option, value, section)
    return min(matches)


def test_the_table_is_well_formed() -> None:
    for entry in TABLE:
        assert entry["section"] in ("Unit", "Service", "Install"), entry
        assert re.fullmatch(r"[A-Z][A-Za-z]+", entry["option"]), entry
        assert 38 <= int(entry["since"]) <= 260, entry
        if "fallback" in entry:
            assert int(entry["fallback"]["since"]) < int(entry["since"]), entry
    # An option whose values came at different versions has a value on every entry, so that no
    # entry without one covers a newer value (Type=exec came in 240, Type= itself before 38).
    for option in {e["option"] for e in TABLE if "value" in e}:
        assert all("value" in e for e in TABLE if e["option"] == option), option
    # The templates' questions read these entries: one each.
    assert len([e for e in TABLE if e["option"] == "ExecStop"]) == 1


@pytest.mark.parametrize("version", [219, 252])
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("unit", sorted(UNITS))
def test_every_option_is_known_to_that_systemd_in_its_section(unit: str, case: str, version: int) -> None:
    lines = list(options(render(unit, case, version)))
    assert {section for section, _, _ in lines} == {"Unit", "Service", "Install"}
    for section, option, value in lines:
        assert since_of(section, option, value) <= version, "%s=%s in [%s] written for systemd %d" % (
            option, value, section, version)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("unit", sorted(UNITS))
def test_systemd_219_reads_the_start_limit_in_service_under_its_old_name(unit: str, case: str) -> None:
    old = list(options(render(unit, case, 219)))
    new = list(options(render(unit, case, 252)))
    # Off on both: the restart back-off spaces the restarts out and never gives up.
    assert [line for line in old if line[1].startswith("StartLimit")] == [("Service", "StartLimitInterval", "0")]
    assert [line for line in new if line[1].startswith("StartLimit")] == [("Unit", "StartLimitIntervalSec", "0")]
    # 219 has no $SERVICE_RESULT: no ExecStopPost= (deploy.yml forgets the back-off there).
    assert [o for _, o, _ in old if o == "ExecStopPost"] == []
    assert [o for _, o, _ in new if o == "ExecStopPost"] == ["ExecStopPost"]
    # Nothing else differs but the stop command's "+" (below).
    def rest(lines: List[Tuple[str, str, str]]) -> List[Tuple[str, str, str]]:
        return [(s, o, v.lstrip("+") if o == "ExecStop" else v) for s, o, v in lines
                if not o.startswith("StartLimit") and o != "ExecStopPost"]
    assert rest(old) == rest(new)


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_graceful_stop_runs_with_full_privileges_from_231_only(case: str) -> None:
    stops = {version: [value for _, option, value in options(render("customer-stream", case, version))
                       if option == "ExecStop"] for version in (219, 230, 231, 252)}
    if case in ("sandbox3", "hdp-cluster"):
        # Cluster mode has no ExecStop: the supervisor handles SIGTERM.
        assert stops == {219: [], 230: [], 231: [], 252: []}
        return
    assert [value[:12] for value in stops[252]] == ["+/bin/sh -c "]
    assert stops[231] == stops[252]
    assert stops[219] == stops[230] == [stops[252][0][1:]]


def test_systemd_252_gets_exactly_these_units() -> None:
    assert render("customer-producer", "sandbox", 252) == EXPECTED_PRODUCER_252
    assert render("customer-stream", "sandbox", 252) == EXPECTED_STREAM_252


@pytest.mark.parametrize("version", [229, 230])
def test_the_start_limit_moves_to_unit_only_when_its_new_name_is_known_there(version: int) -> None:
    # 229 reads the start limits in [Unit] but not yet the name StartLimitIntervalSec=: [Service].
    lines = [line for line in options(render("customer-producer", "sandbox", version))
             if line[1].startswith("StartLimit")]
    assert {section for section, _, _ in lines} == {"Service" if version == 229 else "Unit"}


def test_a_line_the_table_does_not_cover_fails() -> None:
    # An option not in the table, a newer value of a known option, an option in the wrong section.
    for section, option, value in [("Service", "ExecCondition", "/bin/true"), ("Service", "Type", "exec"),
                                   ("Service", "StartLimitIntervalSec", "600"), ("Service", "ExecStop", "!/bin/true")]:
        with pytest.raises(AssertionError, match="is not in __service_unit_options"):
            since_of(section, option, value)
    assert since_of("Service", "ExecStop", "+/bin/sh -c true") == 231
    assert since_of("Service", "ExecStop", "/bin/sh -c true") == 38
    assert since_of("Service", "StartLimitInterval", "600") == 42


def test_every_table_entry_is_used_by_some_unit() -> None:
    """The table lists what the units use, so its numbers were each looked up for a reason."""
    used: Set[Tuple[str, str]] = set()
    for unit in UNITS:
        for case in CASES:
            for version in (219, 252):
                used.update((section, option) for section, option, _ in options(render(unit, case, version)))
    listed = {(s, o) for s, o, _, _ in variants()}
    assert listed - used == set()
