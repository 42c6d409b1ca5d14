"""verify.yml's verdict: what the source says against what the pipeline wrote.

    python -m customer_pipeline.verify.reconcile --input FACTS.json [--report REPORT.json]

FACTS holds what the play gathered on the nodes: `services`, `topics` (drift found by
kafka_topic in check mode), `lag` (verify.source lag), `expected` (verify.source
expected), `written` (verify.written) and, for a job on YARN, `yarn` (the unfinished
applications of the job's name, as the ResourceManager lists them). Prints a table a person reads and one line per
problem; exits 1 when there is any problem. Pure: no service is contacted here.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

CLASSES = ("usa", "alerts")


def service_state(service: Dict[str, Any]) -> Dict[str, Any]:
    """name plus `systemctl show` lines (ActiveState=..., NRestarts=...) as one record.

    restarts is None (unknown) when systemd does not count them: NRestarts exists from
    systemd 235 on, and an older one (CentOS 7's 219) leaves the property out.
    """
    shown = dict(line.split("=", 1) for line in service.get("show", []) if "=" in line)
    return {"name": service["name"], "active": shown.get("ActiveState", service.get("active", "unknown")),
            "restarts": restart_count(shown.get("NRestarts", service.get("restarts")))}


def restart_count(value: Any) -> Optional[int]:
    """NRestarts as a number, or None when absent or empty: unknown, which is not 0."""
    if isinstance(value, int):
        return value
    text = "" if value is None else str(value).strip()
    return int(text) if text.isdigit() else None


def reconcile(facts: Dict[str, Any]) -> Dict[str, Any]:
    problems: List[str] = []
    services = [service_state(service) for service in facts.get("services", [])]
    for service in services:
        if service["active"] != "active":
            problems.append(f"service {service['name']} is {service['active']}, not active")
        # An unknown count (systemd before 235) neither fails the check nor passes for 0.
        elif service["restarts"] is not None and service["restarts"] > int(facts.get("max_restarts", 0)):
            problems.append(f"service {service['name']} restarted {service['restarts']} time(s) since it was "
                            "started: it is flapping (journalctl -u %s)" % service["name"])
    for topic in facts.get("topics", []):
        if topic.get("changes"):
            problems.append(f"topic {topic['name']} differs from the inventory: {'; '.join(topic['changes'])}")
    yarn = facts.get("yarn")
    if yarn is not None:
        problems.extend(yarn_problems(yarn))
    lag = facts.get("lag") or {}
    if lag.get("lag"):
        behind = ", ".join(f"partition {p}: {v['lag']}" for p, v in sorted(lag["partitions"].items()) if v["lag"])
        problems.append(f"the Spark job is {lag['lag']} message(s) behind {lag.get('topic')} ({behind})")

    written = facts.get("written") or {}
    objects = []
    totals = {"rows": 0, "usa": 0, "alerts": 0, "out_of_scope": 0, "duplicates": 0, "earlier": 0}
    for item in (facts.get("expected") or {}).get("objects", []):
        uri = item["uri"]
        row: Dict[str, Any] = {"uri": uri, "state": item["state"]}
        if item.get("problem"):
            problems.append(f"{uri}: {item['problem']}")
        if "expected" in item:
            expected = item["expected"]
            got = {name: written.get(name, {}).get(uri, {"rows": 0, "duplicates": 0}) for name in CLASSES}
            # Rows of earlier versions of the key (overwritten, maybe mid-read): objects of their
            # own whose bytes are gone, so they are counted and checked for duplicates only.
            earlier_duplicates = {name: int(got[name].get("earlier_duplicates", 0)) for name in CLASSES}
            row.update(rows=expected["rows"], out_of_scope=expected["out_of_scope"],
                       duplicates=sum(got[name]["duplicates"] + earlier_duplicates[name] for name in CLASSES),
                       earlier=sum(int(got[name].get("earlier_rows", 0)) - earlier_duplicates[name]
                                   for name in CLASSES))
            for name in CLASSES:
                row[name] = got[name]["rows"] - got[name]["duplicates"]
                row[f"{name}_expected"] = expected[name]
                missing = expected[name] - row[name]
                if missing > 0:
                    problems.append(f"{uri}: class {name} has {row[name]} row(s) in HDFS, expected {expected[name]} "
                                    f"({missing} missing)")
                elif missing < 0:
                    problems.append(f"{uri}: class {name} has {row[name]} row(s) in HDFS, expected {expected[name]} "
                                    f"({-missing} unexpected)")
                if got[name]["duplicates"]:
                    problems.append(f"{uri}: class {name} holds {got[name]['duplicates']} duplicated record_id(s)")
                if earlier_duplicates[name]:
                    problems.append(f"{uri}: class {name} holds {earlier_duplicates[name]} duplicated record_id(s) "
                                    "of earlier versions of the object")
            for key in totals:
                totals[key] += row[key]
        objects.append(row)
    known = {item["uri"] for item in (facts.get("expected") or {}).get("objects", [])}
    for name in CLASSES:
        for uri in sorted(set(written.get(name, {})) - known):
            problems.append(f"{uri}: class {name} has {written[name][uri]['rows']} row(s) in HDFS from an object "
                            "the producer does not know")
    return {"ok": not problems, "problems": problems, "objects": objects, "totals": totals,
            "lag": lag.get("lag"), "services": services, "topics": facts.get("topics", []), "yarn": yarn}


def yarn_problems(yarn: Dict[str, Any]) -> List[str]:
    """The job on YARN runs as exactly one application, RUNNING."""
    apps = yarn.get("apps", [])
    running = [app for app in apps if app.get("state") == "RUNNING"]
    if len(apps) > 1:
        return ["%d YARN applications named %s are unfinished (%s): only one may run"
                % (len(apps), yarn.get("name"), ", ".join(f"{a['id']} {a['state']}" for a in apps))]
    if not running:
        state = f"{apps[0]['id']} is {apps[0]['state']}" if apps else "none is unfinished"
        return [f"the job's YARN application ({yarn.get('name')}) is not RUNNING: {state}"]
    return []


def restarts_text(restarts: Optional[int]) -> str:
    return "restarts unknown" if restarts is None else f"{restarts} restarts"


def table(report: Dict[str, Any]) -> str:
    header: Tuple[str, ...] = ("object", "state", "rows", "usa", "alerts", "out of scope", "duplicates",
                               "earlier versions")
    lines = [header]
    for row in report["objects"]:
        if "rows" in row:
            lines.append((row["uri"], row["state"], str(row["rows"]), f"{row['usa']}/{row['usa_expected']}",
                          f"{row['alerts']}/{row['alerts_expected']}", str(row["out_of_scope"]), str(row["duplicates"]),
                          str(row.get("earlier", 0))))
        else:
            lines.append((row["uri"], row["state"], "-", "-", "-", "-", "-", "-"))
    totals = report["totals"]
    lines.append(("total", "", str(totals["rows"]), str(totals["usa"]), str(totals["alerts"]),
                  str(totals["out_of_scope"]), str(totals["duplicates"]), str(totals["earlier"])))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in lines]
    text.insert(1, "  ".join("-" * width for width in widths))
    text.append("")
    text.append(f"lag: {report['lag'] if report['lag'] is not None else 'unknown'} message(s); "
                + ", ".join(f"{s['name']} {s['active']} ({restarts_text(s.get('restarts'))})"
                            for s in report["services"]))
    if any(s.get("restarts") is None for s in report["services"]):
        text.append("restarts unknown: systemd before 235 does not count them (NRestarts), "
                    "so verify cannot tell whether such a service is flapping")
    if report.get("yarn") is not None:
        apps = report["yarn"].get("apps", [])
        text.append("YARN: " + (", ".join(f"{a['id']} {a['state']}" for a in apps) or "no application")
                    + f" ({report['yarn'].get('name')})")
    text.append("verdict: " + ("OK" if report["ok"] else f"{len(report['problems'])} problem(s)"))
    text.extend("  - " + problem for problem in report["problems"])
    return "\n".join(text)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m customer_pipeline.verify.reconcile", description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True, help="facts gathered by verify.yml (JSON)")
    parser.add_argument("--report", help="write the verdict here as JSON")
    args = parser.parse_args(argv)
    if args.input == "-":
        report = reconcile(json.load(sys.stdin))
    else:
        with open(args.input, encoding="utf-8") as handle:
            report = reconcile(json.load(handle))
    if args.report:
        with open(args.report, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=2, sort_keys=True)
    print(table(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
