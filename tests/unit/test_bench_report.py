"""bench/report.py replaces only its own part of docs/benchmarks.md."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import report  # noqa: E402


def test_the_section_is_added_once_then_replaced_in_place(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nanalysis written by hand\n")
    report.write(doc, report.section([(["bench/a.py", "--rows", "10"], "| what | rows/s |\n| a | 1 |")]))
    first = doc.read_text()
    assert first.startswith("# Benchmarks\n\nanalysis written by hand\n\n## The last `make bench`\n")
    assert "python bench/a.py --rows 10" in first and "| a | 1 |" in first
    doc.write_text(first + "\nmore analysis below\n")
    report.write(doc, report.section([(["bench/b.py"], "| b | 2 |")]))
    second = doc.read_text()
    assert second.count(report.BEGIN) == 1 and second.count(report.END) == 1
    assert "| a | 1 |" not in second and "| b | 2 |" in second
    assert second.startswith("# Benchmarks\n\nanalysis written by hand\n") and second.endswith("\nmore analysis below\n")


def test_tables_stay_whole_and_text_lines_are_paragraphs() -> None:
    printed = "title line\n| a | b |\n| --- | --- |\n| 1 | 2 |\nnote one\nnote two"
    assert report.as_markdown(printed) == "title line\n\n| a | b |\n| --- | --- |\n| 1 | 2 |\n\nnote one\n\nnote two"
