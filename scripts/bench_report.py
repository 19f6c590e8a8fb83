"""Latency percentiles and the Markdown that scripts/bench appends to its results."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("bench")

PAGE_HEADER = """\
# Benchmarks

Results of `scripts/bench`, newest last. Each run lists the machine, the exact
command and one table per scenario; see the top of `scripts/bench.py` for what each
scenario measures.
"""


@dataclass
class LatencySummary:
    """Publish-to-delivery latency over all sockets, in milliseconds."""

    count: int
    p50: float
    p90: float
    p99: float
    max: float


@dataclass
class Table:
    """One scenario's results: a Markdown table and notes under it."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def render(self) -> str:
        lines = [f"### {self.title}", ""]
        lines.append("| " + " | ".join(self.columns) + " |")
        lines.append("|" + "---|" * len(self.columns))
        for row in self.rows:
            lines.append("| " + " | ".join(row) + " |")
        if self.notes:
            lines.append("")
            lines.extend(f"- {note}" for note in self.notes)
        return "\n".join(lines) + "\n"


def merge_histograms(
    reports: Iterable[dict[str, Any]], key: str = "histogram"
) -> tuple[Counter[int], float]:
    """Add up the clients' latency histograms under ``key`` and return the sum and
    the bucket width in seconds."""
    merged: Counter[int] = Counter()
    bucket_seconds = 0.0001
    for report in reports:
        bucket_seconds = report["bucket_seconds"]
        for bucket, count in report.get(key, {}).items():
            merged[int(bucket)] += count
    return merged, bucket_seconds


def summarise_latency(
    reports: Sequence[dict[str, Any]], since: str = "request"
) -> LatencySummary | None:
    """Compute p50, p90 and p99 of the merged histograms as bucket upper edges.

    ``since`` picks the start of each latency: "request" is the publisher's clock
    before the PATCH, "publish" is the event's ``published_ms``.
    """
    histogram_key, max_key = (
        ("histogram", "max_latency")
        if since == "request"
        else ("publish_histogram", "max_publish_latency")
    )
    histogram, bucket_seconds = merge_histograms(reports, histogram_key)
    total = sum(histogram.values())
    if total == 0:
        return None
    percentiles = {0.5: 0.0, 0.9: 0.0, 0.99: 0.0}
    seen = 0
    pending = sorted(percentiles)
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        while pending and seen >= pending[0] * total:
            percentiles[pending.pop(0)] = (bucket + 1) * bucket_seconds * 1000
        if not pending:
            break
    max_ms = max(report.get(max_key, 0.0) for report in reports) * 1000
    # A bucket's upper edge may lie above the largest latency itself.
    p50, p90, p99 = (min(percentiles[q], max_ms) for q in (0.5, 0.9, 0.99))
    return LatencySummary(total, p50, p90, p99, max_ms)


def format_ms(value: float) -> str:
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def format_count(value: float) -> str:
    return f"{value:,.0f}"


def render_run(
    machine: dict[str, str], command: str, tables: list[Table], notes: list[str]
) -> str:
    lines = [
        f"## {machine['date']}: {machine['cpu model']}, {machine['cpus']} CPUs",
        "",
    ]
    lines.append(f"Command: `{command}`")
    lines.append("")
    for key, value in machine.items():
        lines.append(f"- {key}: {value}")
    lines.extend(f"- {note}" for note in notes)
    lines.append("")
    for table in tables:
        lines.append(table.render())
    return "\n".join(lines)


def append_run(path: Path, text: str) -> None:
    """Append one run to the results page, creating the page if it is missing."""
    if not path.exists():
        path.write_text(PAGE_HEADER)
    current = path.read_text()
    separator = "\n" if current.endswith("\n") else "\n\n"
    path.write_text(current + separator + text)
    log.info("appended the results to %s", path)
