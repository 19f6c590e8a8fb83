#!/usr/bin/env python3
"""Benchmark a running Vitrine topology from load-client processes on loopback.

Start the topology with ``scripts/run`` first. The bench logs in as the demo manager
and creates the live ``bench`` and a product in it unless they exist. It runs these
scenarios (all by default, in this order, each with ``--scenario NAME``) and reuses
the open sockets when the next scenario needs as many:

idle        hold N idle sockets subscribed to live:bench: server RSS per socket,
            server CPU per connect and the wall time to connect them all
burst       one event to N sockets: time until the last socket has it
throughput  K events published back to back to N sockets: deliveries per second of
            server CPU
latency     for each size, N sockets while the stock of the product changes twice a
            second: publish-to-delivery latency percentiles, missing, duplicate and
            out-of-order events

Load clients (scripts/loadclient.py) connect to 127.0.0.1 only, stop after their time
limit, and the results are appended to docs/BENCHMARKS.md with the machine and the
command.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import math
import os
import shlex
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench_api import ApiError, ManagerApi, Publication, fanout_lags, read_password
from bench_clients import (
    ClientError,
    ClientPool,
    ConnectSummary,
    PoolPlan,
    plan_processes,
)
from bench_report import (
    Table,
    append_run,
    format_count,
    format_ms,
    render_run,
    summarise_latency,
)
from bench_system import (
    MachineCpu,
    ServerProcesses,
    describe_machine,
    ephemeral_port_count,
    find_server_processes,
    process_age_seconds,
    read_machine_cpu,
    read_rss_kib,
    total_cpu_seconds,
    total_system_seconds,
)

log = logging.getLogger("bench")

REPO_DIR = Path(__file__).resolve().parent.parent
SCENARIOS = ("idle", "burst", "throughput", "latency")
LOOPBACK = "127.0.0.1"
# With --via auto, pools larger than this connect directly to the processes, because
# HAProxy is one process with 20,000 open files and uses two per connection.
HAPROXY_SOCKET_LIMIT = 8000
# Ephemeral ports left for everything else that connects to the same destination.
PORT_MARGIN = 2000
# A load-client process at this share of one core or above limits the result.
CLIENT_SATURATED = 0.9
POLL_INTERVAL = 0.2
FIRST_SOURCE_ADDRESS = "127.0.0.2"
BENCH_USERNAME = "demo"
FANOUT_NOTE = (
    "server fan-out lag: each process records, per event, the time from the publish "
    "in Redis (published_ms) until its send() to the last of its sockets returned "
    "(GET /healthz, recent_fanouts). It is the servers' own share of the latency; "
    "the rest is the kernel and the load clients reading the sockets"
)
PROBE_NOTE = (
    "probe: {probes} of the sockets sit in a load client of their own and are spread "
    "over the processes like the rest. Their latency leaves out the queueing in load "
    "clients that serve thousands of sockets each, so it is closer to the server's "
    "own delay"
)
CLIENT_PRIORITY_NOTES = {
    "idle": "load clients: SCHED_IDLE while the events flow (--client-priority idle), "
    "so a frame that wakes a client does not preempt a server in the middle of a "
    "fan-out; the clients run at the next scheduler tick instead. The latency still "
    "includes the clients' time to read every frame on the same cores",
    "background": "load clients: SCHED_IDLE in sessions of their own at autogroup "
    "nice 19 while the events flow (--client-priority background), so they read "
    "only on CPU time the servers leave, after the fan-outs. The server fan-out lag "
    "is then close to the servers' own; the latency adds the clients' reading after "
    "it",
    "normal": "load clients: normal priority (--client-priority normal), so they "
    "compete with the servers for the same cores during each fan-out",
}


@dataclass
class Snapshot:
    """CPU seconds and RSS of every measured process at one moment."""

    at: float
    vitrine_cpu: float
    vitrine_system: float
    haproxy_cpu: float
    redis_cpu: float
    client_cpu: dict[int, float]
    machine: MachineCpu
    vitrine_rss_kib: int


@dataclass
class Usage:
    """CPU seconds used between two snapshots, by group, and the wall time."""

    wall: float
    vitrine: float
    vitrine_system: float
    haproxy: float
    redis: float
    clients: float
    client_peak_share: float
    machine_busy: float
    machine_interrupts: float

    @property
    def other(self) -> float:
        """Busy CPU outside the measured processes: interrupts, PostgreSQL, the
        bench's publisher, other users."""
        known = self.vitrine + self.haproxy + self.redis + self.clients
        return max(0.0, self.machine_busy - known)


@dataclass
class Context:
    """Settings, topology, manager API and open sockets that every scenario uses."""

    args: argparse.Namespace
    var_dir: Path
    servers: ServerProcesses
    api: ManagerApi
    product_id: int
    stock_base: int
    stock_counter: int = 0
    pool: ClientPool | None = None
    pool_key: tuple[int, str] | None = None

    def next_stock(self) -> int:
        self.stock_counter += 1
        return self.stock_base + self.stock_counter


@dataclass(frozen=True)
class SourcePlan:
    """Source addresses: a list, or the first of a range and how many."""

    addresses: list[str]
    first_and_count: tuple[str, int] | None


@dataclass
class OpenedPool:
    """A pool of subscribed sockets and what opening it cost."""

    pool: ClientPool
    via: str
    connect: ConnectSummary | None
    usage: Usage | None
    rss_before_kib: int
    rss_after_kib: int
    notes: list[str] = field(default_factory=list)


def take_snapshot(ctx: Context) -> Snapshot:
    servers = ctx.servers
    client_cpu = ctx.pool.cpu_seconds() if ctx.pool else {}
    return Snapshot(
        at=time.monotonic(),
        vitrine_cpu=total_cpu_seconds(servers.vitrine_pids()),
        vitrine_system=total_system_seconds(servers.vitrine_pids()),
        haproxy_cpu=total_cpu_seconds(servers.haproxy),
        redis_cpu=total_cpu_seconds(servers.redis),
        client_cpu=client_cpu,
        machine=read_machine_cpu(),
        vitrine_rss_kib=sum(read_rss_kib(pid) for pid in servers.vitrine_pids()),
    )


def usage_between(before: Snapshot, after: Snapshot) -> Usage:
    wall = max(after.at - before.at, 1e-9)
    client_deltas = [
        after.client_cpu[pid] - before.client_cpu.get(pid, 0.0)
        for pid in after.client_cpu
    ]
    return Usage(
        wall=wall,
        vitrine=after.vitrine_cpu - before.vitrine_cpu,
        vitrine_system=after.vitrine_system - before.vitrine_system,
        haproxy=after.haproxy_cpu - before.haproxy_cpu,
        redis=after.redis_cpu - before.redis_cpu,
        clients=sum(client_deltas),
        client_peak_share=max(client_deltas, default=0.0) / wall,
        machine_busy=after.machine.busy - before.machine.busy,
        machine_interrupts=after.machine.interrupts - before.machine.interrupts,
    )


def usage_notes(usage: Usage, what: str) -> list[str]:
    """Flag a result limited by the load clients or by other load on the machine."""
    notes = []
    if usage.client_peak_share >= CLIENT_SATURATED:
        notes.append(
            f"{what}: client-limited, because the busiest load-client process used "
            f"{usage.client_peak_share:.0%} of a core"
        )
    cores = os.cpu_count() or 1
    busy_share = usage.machine_busy / (usage.wall * cores)
    if busy_share >= 0.9:
        notes.append(
            f"{what}: the machine's {cores} cores were {busy_share:.0%} busy, so "
            "server and clients competed for CPU"
        )
    if usage.other / usage.wall >= 0.1:
        notes.append(
            f"{what}: CPU outside the measured processes was "
            f"{usage.other / usage.wall:.0%} of a core (PostgreSQL, the bench's "
            "publisher, other users); irq and softirq time (loopback TCP), which "
            "the kernel may also count in the interrupted process, was "
            f"{usage.machine_interrupts / usage.wall:.0%} of a core"
        )
    return notes


def choose_via(args: argparse.Namespace, sockets: int) -> str:
    if args.via != "auto":
        return str(args.via)
    return "haproxy" if sockets <= HAPROXY_SOCKET_LIMIT else "direct"


def pool_targets(ctx: Context, via: str) -> list[str]:
    count = len(ctx.servers.vitrine)
    if via == "haproxy":
        port = ctx.args.listen_port
        return [f"{LOOPBACK}:{port}:p{index}" for index in range(1, count + 1)]
    base = ctx.args.port_base
    return [f"{LOOPBACK}:{base + index}" for index in range(1, count + 1)]


def source_addresses(ctx: Context, sockets: int, via: str) -> SourcePlan:
    """Pick the loopback source addresses of a pool's sockets.

    The servers limit how fast one client address opens sockets, so by default every
    --sockets-per-address sockets get their own address, as in a storm of many
    clients. With one address, Linux picks a local port per destination address and
    port, so each destination takes up to ip_local_port_range sockets from it.
    """
    args = ctx.args
    if args.source_address:
        return SourcePlan(list(args.source_address), None)
    if args.sockets_per_address:
        count = math.ceil(sockets / args.sockets_per_address)
        return SourcePlan([], (FIRST_SOURCE_ADDRESS, count))
    destinations = 1 if via == "haproxy" else len(ctx.servers.vitrine)
    per_destination = math.ceil(sockets / destinations)
    usable = ephemeral_port_count() - PORT_MARGIN
    if per_destination <= usable:
        return SourcePlan([], None)
    count = math.ceil(per_destination / usable)
    return SourcePlan([], (FIRST_SOURCE_ADDRESS, count))


def open_pool(ctx: Context, sockets: int, deadline: float) -> OpenedPool:
    """Reuse the open sockets if they match, or open a new set and measure it."""
    args = ctx.args
    via = choose_via(args, sockets)
    if ctx.pool is not None and ctx.pool_key == (sockets, via):
        log.info("reusing the %d open sockets (via %s)", sockets, via)
        rss = take_snapshot(ctx).vitrine_rss_kib
        return OpenedPool(ctx.pool, via, None, None, rss, rss)
    close_pool(ctx)

    sources = source_addresses(ctx, sockets, via)
    probe_sockets = min(args.probe_sockets, sockets // 2)
    plan = PoolPlan(
        sockets=sockets,
        via=via,
        targets=pool_targets(ctx, via),
        processes=plan_processes(sockets - probe_sockets, args.sockets_per_client),
        rate=args.connect_rate,
        max_pending=args.max_pending,
        connect_timeout=args.connect_timeout,
        subscribe_retries=args.subscribe_retries,
        sources=sources.addresses,
        source_range=sources.first_and_count,
        topic=f"live:{args.live}",
        max_lifetime=args.client_lifetime,
        probe_sockets=probe_sockets,
        own_sessions=args.client_priority == "background",
    )

    before = take_snapshot(ctx)
    ctx.pool = ClientPool(plan, REPO_DIR / ".venv" / "bin" / "python")
    ctx.pool_key = (sockets, via)
    before.client_cpu = {pid: 0.0 for pid in ctx.pool.pids()}
    connect = ctx.pool.wait_connected(deadline)
    after = take_snapshot(ctx)

    opened = OpenedPool(
        ctx.pool,
        via,
        connect,
        usage_between(before, after),
        before.vitrine_rss_kib,
        after.vitrine_rss_kib,
    )
    opened.notes = pool_notes(ctx, plan, connect)
    log.info(
        "%d sockets subscribed via %s in %.1f s (%d failed)",
        connect.opened,
        via,
        connect.seconds,
        connect.failed,
    )
    return opened


def pool_notes(ctx: Context, plan: PoolPlan, connect: ConnectSummary) -> list[str]:
    notes = []
    if plan.via == "direct":
        first = ctx.args.port_base + 1
        last = ctx.args.port_base + len(ctx.servers.vitrine)
        notes.append(
            f"{plan.sockets:,} sockets connected directly to 127.0.0.1:{first}..{last}"
            ", not through HAProxy, which holds at most about 9,900 client "
            "connections (one process, 20,000 open files, two per connection)"
        )
    if plan.sources:
        notes.append(f"source addresses {', '.join(plan.sources)}")
    if plan.source_range:
        first, count = plan.source_range
        notes.append(
            f"connected from {count:,} loopback addresses ({first} and up, at most "
            f"{math.ceil(plan.sockets / count):,} sockets each), because the servers "
            "limit how fast one address opens sockets (VITRINE_WS_CONNECT_RATE and "
            "VITRINE_WS_CONNECT_BURST)"
        )
    if connect.subscribe_retries:
        notes.append(
            f"the server rejected {connect.subscribe_retries:,} subscribes with "
            "'unavailable' (the cause is in the servers' logs); the clients "
            f"retried them after 1 to 3 s, up to {ctx.args.subscribe_retries} "
            "times each"
        )
    if connect.failed:
        reasons = ", ".join(f"{k} ({v})" for k, v in connect.failures.items())
        notes.append(f"{connect.failed:,} sockets failed to subscribe: {reasons}")
    return notes


def close_pool(ctx: Context) -> None:
    if ctx.pool is not None:
        ctx.pool.stop()
    ctx.pool = None
    ctx.pool_key = None


def open_sockets(ctx: Context) -> int:
    assert ctx.pool is not None
    replies = ctx.pool.command({"cmd": "reset"}, "reset")
    return sum(reply["open"] for reply in replies)


def wait_for_deliveries(
    ctx: Context, stocks: list[int], expected: int, timeout: float
) -> int:
    """Poll the clients until ``expected`` receipts of ``stocks`` or the timeout."""
    assert ctx.pool is not None
    deadline = time.monotonic() + timeout
    count = 0
    while time.monotonic() < deadline:
        replies = ctx.pool.command({"cmd": "count", "stocks": stocks}, "count")
        count = sum(reply["count"] for reply in replies)
        if count >= expected:
            break
        time.sleep(POLL_INTERVAL)
    return count


def collect_reports(
    ctx: Context, publications: list[Publication]
) -> list[dict[str, Any]]:
    assert ctx.pool is not None
    command = {
        "cmd": "report",
        "publish_times": {str(p.stock): p.published_at for p in publications},
        "final_offset": ctx.api.topic_offset(ctx.args.live),
    }
    return ctx.pool.command(command, "report")


def publish_paced(
    ctx: Context, count: int, rate: float | None, deadline: float
) -> list[Publication]:
    """Change the stock ``count`` times, ``rate`` per second or back to back."""
    publications: list[Publication] = []
    start = time.monotonic()
    for index in range(count):
        if rate:
            delay = start + index / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        if time.monotonic() >= deadline:
            log.warning("time limit reached after %d of %d events", index, count)
            break
        publications.append(
            ctx.api.set_stock(ctx.args.live, ctx.product_id, ctx.next_stock())
        )
    return publications


def rss_cell(before_kib: int, after_kib: int) -> str:
    return f"{before_kib / 1024:.0f} → {after_kib / 1024:.0f}"


def server_cpu_cell(usage: Usage) -> str:
    """Server CPU seconds and the share spent in the kernel (stime)."""
    kernel = usage.vitrine_system / usage.vitrine if usage.vitrine else 0.0
    return f"{usage.vitrine:.2f} ({kernel:.0%} kernel)"


def cpu_share(seconds: float, wall: float) -> str:
    return f"{seconds / wall:.0%}"


@contextmanager
def scenario_deadline(ctx: Context, name: str) -> Iterator[float]:
    log.info("scenario %s: time limit %.0f s", name, ctx.args.time_limit)
    yield time.monotonic() + ctx.args.time_limit


# Scenario: idle sockets ---------------------------------------------------------


def run_idle(ctx: Context) -> Table:
    args = ctx.args
    table = Table(
        "Idle sockets",
        [
            "sockets subscribed",
            "via",
            "connect wall s",
            "connects/s",
            "server RSS MiB",
            "KiB/socket",
            "server CPU ms/connect",
            "HAProxy + Redis CPU s",
            "hold s",
            "open after hold",
            "pongs sent",
            "KiB/socket after hold",
            "server CPU during hold",
        ],
    )
    with scenario_deadline(ctx, "idle") as deadline:
        close_pool(ctx)
        opened = open_pool(ctx, args.idle_sockets, deadline)
        hold_start = take_snapshot(ctx)
        hold = min(args.idle_hold, max(0.0, deadline - time.monotonic() - 15))
        log.info("holding the idle sockets for %.0f s", hold)
        time.sleep(hold)
        hold_end = take_snapshot(ctx)
        reports = collect_reports(ctx, [])
    table.rows.append(idle_row(opened, reports, hold_start, hold_end))
    assert opened.usage is not None
    table.notes += opened.notes + usage_notes(opened.usage, "connect")
    table.notes.append(freshness_note(ctx, opened.connect))
    table.notes.append(
        "KiB/socket is the growth of the Vitrine processes' summed VmRSS divided by "
        "the sockets; server CPU is utime + stime of the Vitrine processes"
    )
    table.notes.append(
        "targets: 38,000 idle sockets on two processes at <= 10 KiB server RSS each "
        "and <= 0.4 ms server CPU per connect"
    )
    return table


def freshness_note(ctx: Context, connect: ConnectSummary | None) -> str:
    """Say how long the processes ran before, because RSS growth under-counts in
    processes whose heap grew for earlier sockets."""
    seconds = connect.seconds if connect else 0.0
    ages = [process_age_seconds(pid) for pid in ctx.servers.vitrine_pids()]
    before = max(0.0, min(ages) - seconds - ctx.args.idle_hold)
    return (
        f"the Vitrine processes had run for {before / 60:.1f} min before the connects "
        "began; processes that held sockets earlier reuse freed memory, so restart "
        "them (scripts/run restart) before measuring RSS per socket"
    )


def idle_row(
    opened: OpenedPool,
    reports: list[dict[str, Any]],
    hold_start: Snapshot,
    hold_end: Snapshot,
) -> list[str]:
    connect, usage = opened.connect, opened.usage
    assert connect is not None and usage is not None
    subscribed = max(connect.opened, 1)
    hold = usage_between(hold_start, hold_end)
    rss_growth = hold_end.vitrine_rss_kib - opened.rss_before_kib
    return [
        format_count(connect.opened),
        opened.via,
        f"{connect.seconds:.1f}",
        format_count(connect.opened / max(connect.seconds, 1e-9)),
        rss_cell(opened.rss_before_kib, opened.rss_after_kib),
        f"{(opened.rss_after_kib - opened.rss_before_kib) / subscribed:.1f}",
        f"{usage.vitrine * 1000 / subscribed:.3f}"
        f" ({usage.vitrine_system / max(usage.vitrine, 1e-9):.0%} kernel)",
        f"{usage.haproxy:.1f} + {usage.redis:.1f}",
        f"{hold.wall:.0f}",
        format_count(sum_field(reports, "open")),
        format_count(sum_field(reports, "pings")),
        f"{rss_growth / subscribed:.1f}",
        cpu_share(hold.vitrine, hold.wall) + " of a core",
    ]


def sum_field(reports: list[dict[str, Any]], name: str) -> int:
    return sum(int(str(report[name])) for report in reports)


# Scenario: latency at a steady event rate ----------------------------------------


def run_latency(ctx: Context) -> Table:
    args = ctx.args
    table = Table(
        f"Latency at {args.latency_rate:g} events/s for {args.latency_duration:g} s",
        [
            "sockets",
            "via",
            "events",
            "deliveries",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "max ms",
            "from publish p50 / p99 / max ms",
            "probe p50 / p99 / max ms",
            "missing",
            "duplicate",
            "out of order",
            "server fan-out lag p50 / p99 / max ms",
            "PATCH p50 / max ms",
            "server CPU",
            "HAProxy CPU",
            "server RSS MiB",
            "busiest client",
        ],
    )
    for sockets in args.latency_sockets:
        with scenario_deadline(ctx, f"latency {sockets}") as deadline:
            opened = open_pool(ctx, sockets, deadline)
            row, notes = measure_latency(ctx, opened, deadline)
        close_pool(ctx)
        table.rows.append(row)
        table.notes += opened.notes + notes
    table.notes.append(
        "latency runs from time.time() just before the publisher sends the PATCH "
        "(which commits to PostgreSQL and publishes to Redis) to the receive time in "
        "the load client, on the same machine. The from-publish columns start at "
        "the event's published_ms instead, the Redis clock at the publish (1 ms "
        "resolution), so they leave out the PATCH's own work"
    )
    table.notes.append(PROBE_NOTE.format(probes=args.probe_sockets))
    table.notes.append(CLIENT_PRIORITY_NOTES[args.client_priority])
    table.notes.append(FANOUT_NOTE)
    table.notes.append(
        "targets: p99 <= 20 / 50 / 100 ms at 1,000 / 5,000 / 10,000 sockets"
    )
    return table


def measure_latency(
    ctx: Context, opened: OpenedPool, deadline: float
) -> tuple[list[str], list[str]]:
    args = ctx.args
    sockets = open_sockets(ctx)
    count = max(1, round(args.latency_rate * args.latency_duration))
    if args.client_priority != "normal":
        opened.pool.set_priority(args.client_priority)
    before = take_snapshot(ctx)
    since_ms = time.time() * 1000
    publications = publish_paced(ctx, count, args.latency_rate, deadline - 15)
    stocks = [publication.stock for publication in publications]
    wait_for_deliveries(ctx, stocks, sockets * len(stocks), args.drain_timeout)
    after = take_snapshot(ctx)
    reports = collect_reports(ctx, publications)
    usage = usage_between(before, after)
    row = delivery_row(sockets, opened.via, publications, reports, probe_index(ctx))
    row += [
        fanout_cell(ctx, since_ms),
        request_times(ctx),
        f"{cpu_share(usage.vitrine, usage.wall)} of a core",
        f"{cpu_share(usage.haproxy, usage.wall)} of a core",
        rss_cell(before.vitrine_rss_kib, after.vitrine_rss_kib),
        f"{usage.client_peak_share:.0%} of a core",
    ]
    return row, usage_notes(usage, f"{sockets:,} sockets")


def probe_cell(reports: list[dict[str, Any]], probe_index: int | None) -> str:
    """Format p50 / p99 / max of the probe sockets' latency, in milliseconds."""
    if probe_index is None:
        return "-"
    return percentiles_cell([reports[probe_index]], "request")


def percentiles_cell(reports: list[dict[str, Any]], since: str) -> str:
    summary = summarise_latency(reports, since)
    if summary is None:
        return "-"
    return " / ".join(
        format_ms(value) for value in (summary.p50, summary.p99, summary.max)
    )


def delivery_row(
    sockets: int,
    via: str,
    publications: list[Publication],
    reports: list[dict[str, Any]],
    probe_index: int | None,
) -> list[str]:
    summary = summarise_latency(reports)
    missing = sum_field(reports, "missing") + sum_field(reports, "tail_missing")
    delivered = summary.count if summary else 0
    expected = sockets * len(publications)
    if summary is None:
        latencies = ["-", "-", "-", "-"]
    else:
        latencies = [
            format_ms(summary.p50),
            format_ms(summary.p90),
            format_ms(summary.p99),
            format_ms(summary.max),
        ]
    return [
        format_count(sockets),
        via,
        str(len(publications)),
        f"{delivered:,} of {expected:,}",
        *latencies,
        percentiles_cell(reports, "publish"),
        probe_cell(reports, probe_index),
        format_count(missing),
        format_count(sum_field(reports, "duplicates")),
        format_count(sum_field(reports, "out_of_order")),
    ]


def fanout_cell(ctx: Context, since_ms: float) -> str:
    """Format p50 / p99 / max of the processes' own fan-out lag since ``since_ms``:
    from the publish in Redis until the send to their last socket returned."""
    ports = [
        ctx.args.port_base + index for index in range(1, len(ctx.servers.vitrine) + 1)
    ]
    lags = sorted(fanout_lags(ports, f"live:{ctx.args.live}", since_ms))
    if not lags:
        return "-"
    p50 = lags[len(lags) // 2]
    p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
    return " / ".join(format_ms(value) for value in (p50, p99, lags[-1]))


def probe_index(ctx: Context) -> int | None:
    return ctx.pool.probe_index if ctx.pool else None


def request_times(ctx: Context) -> str:
    times = sorted(ctx.api.request_seconds)
    ctx.api.request_seconds.clear()
    if not times:
        return "-"
    return f"{times[len(times) // 2] * 1000:.1f} / {times[-1] * 1000:.1f}"


# Scenario: one event to every socket ---------------------------------------------


def run_burst(ctx: Context) -> Table:
    args = ctx.args
    table = Table(
        "Burst: one event to every socket",
        [
            "sockets",
            "via",
            "events",
            "deliveries",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "last delivery ms",
            "from publish p50 / p99 / last ms",
            "probe p50 / p99 / max ms",
            "missing",
            "duplicate",
            "out of order",
            "server fan-out lag p50 / p99 / max ms",
            "PATCH p50 / max ms",
            "server CPU s",
            "server RSS MiB",
            "busiest client",
        ],
    )
    with scenario_deadline(ctx, "burst") as deadline:
        opened = open_pool(ctx, args.burst_sockets, deadline)
        for _ in range(args.burst_repeat):
            if time.monotonic() > deadline - args.drain_timeout:
                log.warning("burst: time limit reached; skipping the other repeats")
                break
            row, notes = measure_burst(ctx, opened, deadline)
            table.rows.append(row)
            table.notes += notes
        table.notes[:0] = opened.notes
    table.notes.append(PROBE_NOTE.format(probes=args.probe_sockets))
    table.notes.append(FANOUT_NOTE)
    table.notes.append(
        "one row per event; last delivery is the latency of the last socket to "
        "receive it; target: one event to 38,000 sockets fully delivered within 1 s"
    )
    return table


def measure_burst(
    ctx: Context, opened: OpenedPool, deadline: float
) -> tuple[list[str], list[str]]:
    sockets = open_sockets(ctx)
    time.sleep(ctx.args.burst_pause)
    before = take_snapshot(ctx)
    since_ms = time.time() * 1000
    publications = publish_paced(ctx, 1, None, deadline)
    stocks = [publication.stock for publication in publications]
    wait_for_deliveries(ctx, stocks, sockets, ctx.args.drain_timeout)
    after = take_snapshot(ctx)
    reports = collect_reports(ctx, publications)
    usage = usage_between(before, after)
    row = delivery_row(sockets, opened.via, publications, reports, probe_index(ctx))
    row += [
        fanout_cell(ctx, since_ms),
        request_times(ctx),
        server_cpu_cell(usage),
        rss_cell(before.vitrine_rss_kib, after.vitrine_rss_kib),
        f"{usage.client_peak_share:.0%} of a core",
    ]
    return row, usage_notes(usage, "burst")


# Scenario: deliveries per server CPU-second --------------------------------------


def run_throughput(ctx: Context) -> Table:
    args = ctx.args
    table = Table(
        "Throughput: events published back to back",
        [
            "sockets",
            "via",
            "events",
            "deliveries",
            "wall s",
            "deliveries/s",
            "server CPU s",
            "deliveries per server CPU-s",
            "HAProxy + Redis CPU s",
            "client CPU s",
            "p99 / max ms",
            "missing",
            "busiest client",
        ],
    )
    with scenario_deadline(ctx, "throughput") as deadline:
        opened = open_pool(ctx, args.throughput_sockets, deadline)
        row, notes = measure_throughput(ctx, opened, deadline)
    table.rows.append(row)
    table.notes += opened.notes + notes
    table.notes.append(
        "server CPU counts the Vitrine processes from the first PATCH until the last "
        "delivery, including the PATCH requests themselves; target: >= 75,000 "
        "deliveries per server CPU-second"
    )
    return table


def measure_throughput(
    ctx: Context, opened: OpenedPool, deadline: float
) -> tuple[list[str], list[str]]:
    args = ctx.args
    sockets = open_sockets(ctx)
    before = take_snapshot(ctx)
    publications = publish_paced(ctx, args.throughput_events, None, deadline - 15)
    stocks = [publication.stock for publication in publications]
    timeout = max(1.0, min(args.drain_timeout * 6, deadline - time.monotonic()))
    wait_for_deliveries(ctx, stocks, sockets * len(stocks), timeout)
    after = take_snapshot(ctx)

    reports = collect_reports(ctx, publications)
    usage = usage_between(before, after)
    summary = summarise_latency(reports)
    delivered = sum_field(reports, "received")
    missing = sum_field(reports, "missing") + sum_field(reports, "tail_missing")
    latency = f"{format_ms(summary.p99)} / {format_ms(summary.max)}" if summary else "-"
    row = [
        format_count(sockets),
        opened.via,
        str(len(publications)),
        format_count(delivered),
        f"{usage.wall:.1f}",
        format_count(delivered / usage.wall),
        server_cpu_cell(usage),
        format_count(delivered / max(usage.vitrine, 1e-9)),
        f"{usage.haproxy:.1f} + {usage.redis:.1f}",
        f"{usage.clients:.1f}",
        latency,
        format_count(missing),
        f"{usage.client_peak_share:.0%} of a core",
    ]
    ctx.api.request_seconds.clear()
    return row, usage_notes(usage, "throughput")


# Command line ---------------------------------------------------------------------


RUNNERS = {
    "idle": run_idle,
    "latency": run_latency,
    "burst": run_burst,
    "throughput": run_throughput,
}


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part.replace("_", "")) for part in text.split(",") if part]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid size list {text!r}: expected numbers separated by commas"
        ) from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"invalid size list {text!r}: sizes >= 1")
    return sizes


def loopback_address(text: str) -> str:
    try:
        address = ipaddress.IPv4Address(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid IPv4 address {text!r}") from None
    if not address.is_loopback:
        raise argparse.ArgumentTypeError(
            f"{text} is not a loopback address; the bench only uses 127.0.0.0/8"
        )
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scripts/bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_topology_arguments(parser)
    add_scenario_arguments(parser)
    add_client_arguments(parser)
    return parser


def add_topology_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("topology (must run on this machine)")
    group.add_argument(
        "--listen-port",
        type=int,
        default=int(os.environ.get("VITRINE_LISTEN_PORT", "8080")),
        help="HAProxy port on 127.0.0.1 (default: $VITRINE_LISTEN_PORT or 8080)",
    )
    group.add_argument(
        "--port-base",
        type=int,
        default=int(os.environ.get("VITRINE_PORT_BASE", "8100")),
        help="process K listens on 127.0.0.1:PORT_BASE+K "
        "(default: $VITRINE_PORT_BASE or 8100)",
    )
    group.add_argument(
        "--var-dir",
        type=Path,
        default=REPO_DIR / "var",
        help="var directory of the running topology, for supervisorctl, the Redis "
        "pid file and the demo password (default: var/ of this checkout)",
    )
    group.add_argument("--live", default="bench", help="slug of the live to use")


def add_scenario_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("scenarios")
    group.add_argument(
        "--scenario",
        action="append",
        choices=SCENARIOS,
        help="scenario to run; repeat for several (default: all, in this order: "
        + ", ".join(SCENARIOS)
        + ")",
    )
    group.add_argument("--idle-sockets", type=int, default=38000, help="idle sockets")
    group.add_argument(
        "--idle-hold",
        type=float,
        default=40.0,
        help="seconds to hold the idle sockets, long enough for a ping round",
    )
    group.add_argument(
        "--latency-sockets",
        type=parse_sizes,
        default=[1000, 5000, 10000],
        help="socket counts of the latency scenario, comma-separated",
    )
    group.add_argument(
        "--latency-rate", type=float, default=2.0, help="stock changes per second"
    )
    group.add_argument(
        "--latency-duration", type=float, default=20.0, help="seconds of publishing"
    )
    group.add_argument(
        "--burst-sockets", type=int, default=38000, help="sockets of the burst"
    )
    group.add_argument(
        "--burst-repeat", type=int, default=3, help="single events to send, one by one"
    )
    group.add_argument(
        "--burst-pause",
        type=float,
        default=2.0,
        help="seconds of quiet before each burst event",
    )
    group.add_argument(
        "--throughput-sockets",
        type=int,
        default=38000,
        help="sockets of the throughput scenario",
    )
    group.add_argument(
        "--throughput-events",
        type=int,
        default=20,
        help="events published back to back in the throughput scenario",
    )
    group.add_argument(
        "--time-limit",
        type=float,
        default=300.0,
        help="seconds each scenario (each latency size) may take, connects included",
    )
    group.add_argument(
        "--drain-timeout",
        type=float,
        default=10.0,
        help="seconds to wait for the last deliveries after the last publish",
    )
    group.add_argument(
        "--output",
        type=Path,
        default=REPO_DIR / "docs" / "BENCHMARKS.md",
        help="results page to append to (default: docs/BENCHMARKS.md)",
    )
    group.add_argument(
        "--no-write", action="store_true", help="print the results without saving"
    )


def add_client_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("load clients")
    group.add_argument(
        "--via",
        choices=("auto", "haproxy", "direct"),
        default="auto",
        help="connect through HAProxy or directly to the processes (default: "
        f"haproxy up to {HAPROXY_SOCKET_LIMIT:,} sockets, direct above)",
    )
    group.add_argument(
        "--client-priority",
        choices=("idle", "background", "normal"),
        default="idle",
        help="scheduling of the load clients in the latency scenario: idle "
        "(SCHED_IDLE) keeps a frame that wakes a client from preempting a server in "
        "the middle of a fan-out; background also runs each client in a session of "
        "its own at autogroup nice 19, so the clients read only after the fan-outs; "
        "normal lets clients preempt servers (default: %(default)s)",
    )
    group.add_argument(
        "--sockets-per-client",
        type=int,
        default=2500,
        help="sockets per load-client process (at most about 19,900 with 20,000 open "
        "files). Small enough that even 5,000 sockets are read by one client per core "
        "(default: %(default)s)",
    )
    group.add_argument(
        "--connect-rate",
        type=float,
        default=4000.0,
        help="connections started per second, over all load clients",
    )
    group.add_argument(
        "--max-pending",
        type=int,
        default=200,
        help="handshakes in progress at once, over all load clients; keep it under "
        "the servers' listen backlog",
    )
    group.add_argument(
        "--connect-timeout",
        type=float,
        default=30.0,
        help="seconds a socket may take to connect and subscribe",
    )
    group.add_argument(
        "--sockets-per-address",
        type=int,
        default=50,
        help="sockets per loopback source address (127.0.0.2 and up), to stay "
        "under the servers' per-address limit of new sockets (20 a second, bursts "
        "of 60 by default); 0 connects from 127.0.0.1 only, plus more addresses "
        "only when one runs out of ephemeral ports",
    )
    group.add_argument(
        "--probe-sockets",
        type=int,
        default=100,
        help="sockets in a separate, lightly loaded load client whose latency is "
        "reported apart (at most half of a pool; 0 for none)",
    )
    group.add_argument(
        "--subscribe-retries",
        type=int,
        default=3,
        help="times a socket resends its subscribe after an 'unavailable' error",
    )
    group.add_argument(
        "--source-address",
        action="append",
        type=loopback_address,
        help="loopback address to connect from; repeat for several (default: "
        "127.0.0.2 and up only when one address runs out of ephemeral ports)",
    )


def check_arguments(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    positive = {
        "--idle-sockets": args.idle_sockets,
        "--burst-sockets": args.burst_sockets,
        "--burst-repeat": args.burst_repeat,
        "--throughput-sockets": args.throughput_sockets,
        "--throughput-events": args.throughput_events,
        "--sockets-per-client": args.sockets_per_client,
        "--max-pending": args.max_pending,
        "--latency-rate": args.latency_rate,
        "--latency-duration": args.latency_duration,
        "--connect-rate": args.connect_rate,
        "--time-limit": args.time_limit,
    }
    for name, value in positive.items():
        if value <= 0:
            parser.error(f"{name} must be positive, got {value}")
    if args.probe_sockets < 0:
        parser.error(f"--probe-sockets must be 0 or more, got {args.probe_sockets}")
    if args.sockets_per_address < 0:
        parser.error(
            f"--sockets-per-address must be 0 or more, got {args.sockets_per_address}"
        )
    if args.via == "haproxy":
        largest = max(
            args.idle_sockets,
            args.burst_sockets,
            args.throughput_sockets,
            *args.latency_sockets,
        )
        if largest > HAPROXY_SOCKET_LIMIT:
            log.warning(
                "--via haproxy with %d sockets: HAProxy holds at most about 9,900 "
                "client connections (VITRINE_HAPROXY_MAXCONN, 9,000 by default)",
                largest,
            )


def setup(args: argparse.Namespace) -> Context:
    var_dir = args.var_dir.resolve()
    servers = find_server_processes(var_dir.parent, var_dir)
    log.info(
        "Vitrine processes %s, HAProxy %s, Redis %s",
        servers.vitrine,
        servers.haproxy,
        servers.redis,
    )
    api = ManagerApi(LOOPBACK, args.listen_port)
    api.login(BENCH_USERNAME, read_password(var_dir))
    api.ensure_live(args.live)
    product_id = api.ensure_product(args.live)
    # Stock values unique within a run: each maps back to one publish time.
    stock_base = (int(time.time()) % 100_000) * 1000
    return Context(args, var_dir, servers, api, product_id, stock_base)


def topology_settings(var_dir: Path) -> str:
    """List the VITRINE_* settings scripts/run gave the processes, minus secrets."""
    path = var_dir / "vitrine.env"
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        log.warning("cannot read %s: %s", path, exc)
        return "unknown"
    hidden = ("SECRET", "URL", "PASSWORD", "TOKEN")
    settings = [
        line
        for line in lines
        if line.startswith("VITRINE_")
        and not any(word in line.split("=", 1)[0] for word in hidden)
    ]
    return ", ".join(f"`{line}`" for line in settings) or "defaults"


def run_scenarios(ctx: Context, scenarios: list[str]) -> list[Table]:
    tables = []
    try:
        for name in SCENARIOS:
            if name in scenarios:
                tables.append(RUNNERS[name](ctx))
    finally:
        close_pool(ctx)
        ctx.api.close()
    return tables


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s bench %(levelname)s %(message)s"
    )
    parser = build_parser()
    args = parser.parse_args(argv)
    check_arguments(args, parser)
    scenarios = args.scenario or list(SCENARIOS)
    steps = len(scenarios) + len(args.latency_sockets)
    args.client_lifetime = args.time_limit * steps + 60
    command = shlex.join(["scripts/bench", *(sys.argv[1:] if argv is None else argv)])
    try:
        ctx = setup(args)
        machine = describe_machine(ctx.var_dir.parent)
        machine["Vitrine processes"] = str(len(ctx.servers.vitrine))
        machine["topology settings"] = topology_settings(ctx.var_dir)
        tables = run_scenarios(ctx, scenarios)
    except (ClientError, ApiError, OSError) as exc:
        log.error("benchmark failed: %s", exc)
        return 1
    except KeyboardInterrupt:
        # The load clients exit by themselves when their stdin closes with the bench.
        log.error("benchmark interrupted; nothing was written")
        return 130
    text = render_run(machine, command, tables, [])
    print(text)
    if not args.no_write:
        append_run(args.output, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
