"""Runs every bench and writes what they printed into docs/benchmarks.md (make bench).

    PYTHONPATH=src python bench/report.py [--rows 1000000] [--curve 100000,1000000,3000000]

Each bench prints its figures with the baseline it measured in the same run and the ratio.
This script runs them one after the other, shows their output as it comes, and replaces the
part of docs/benchmarks.md between the two `make bench` markers with, for each bench, the
command and its tables, under the date and the machine (cores, memory). The rest of the
document (what was found, what was changed and why) is written by hand.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from typing import List, Tuple

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN = "<!-- make bench: begin (written by bench/report.py; edit above or below) -->"
END = "<!-- make bench: end -->"


def machine() -> str:
    memory_kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal:"))
    return "%d cores, %.0f GiB" % (os.cpu_count() or 0, memory_kib / 1024 / 1024)


def run(command: List[str]) -> str:
    """Runs one bench, echoing its output; its printed lines (not its stderr)."""
    print("$ %s" % " ".join(command), flush=True)
    process = subprocess.Popen([sys.executable, *command], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                               env=dict(os.environ, PYTHONPATH=str(ROOT / "src")))
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        print(line, end="", flush=True)
        lines.append(line)
    if process.wait() != 0:
        raise SystemExit("%s failed (exit %d): docs/benchmarks.md is left as it was" % (command[0], process.returncode))
    return "".join(lines).strip()


def as_markdown(output: str) -> str:
    """A bench's printed lines as Markdown: its tables kept whole, every other line a paragraph."""
    lines: List[str] = []
    in_table = False
    for line in output.splitlines():
        table_row = line.startswith("|")
        if lines and lines[-1] and not (table_row and in_table):
            lines.append("")
        lines.append(line)
        in_table = table_row
    return "\n".join(lines)


def section(results: List[Tuple[List[str], str]]) -> str:
    parts = [BEGIN, "", "Last `make bench`: %s, on this machine (%s), the one-node sandbox." % (
        dt.date.today().isoformat(), machine())]
    for command, output in results:
        parts += ["", "```sh", "python %s" % " ".join(command), "```", "", as_markdown(output)]
    return "\n".join(parts + ["", END])


def write(doc: Path, block: str) -> None:
    text = doc.read_text()
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n## The last `make bench`\n\n" + block + "\n"
    doc.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--curve", default="100000,1000000,3000000", help="sizes of the end-to-end runs")
    args = parser.parse_args()
    commands = [
        ["bench/producer_encode.py"],
        ["bench/producer_throughput.py", "--rows", str(args.rows)],
        ["bench/producer_memory.py"],
        ["bench/stream_job.py", "--rows", str(args.rows)],
        ["bench/end_to_end.py", "--rows", args.curve],
        ["bench/deploy_time.py"],
    ]
    results = [(command, run(command)) for command in commands]
    write(DOC, section(results))
    print("wrote %s" % DOC.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
