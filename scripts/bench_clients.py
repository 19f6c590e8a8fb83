"""Load-client processes (scripts/loadclient.py) and the JSON-line channel to them."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import selectors
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from bench_system import read_cpu_seconds

log = logging.getLogger("bench")

LOADCLIENT = Path(__file__).resolve().parent / "loadclient.py"
EXIT_TIMEOUT = 15.0
PROGRESS_LOG_INTERVAL = 5.0


class ClientError(RuntimeError):
    """A load-client process that exited, timed out or sent something unexpected."""


@dataclass(frozen=True)
class PoolPlan:
    """How many sockets to open to which targets, from how many processes."""

    sockets: int
    via: str
    targets: list[str]
    processes: int
    rate: float
    max_pending: int
    connect_timeout: float
    subscribe_retries: int
    sources: list[str]
    source_range: tuple[str, int] | None
    topic: str
    max_lifetime: float
    # Sockets of the last process, kept apart from the busy ones to time deliveries
    # without the queueing in a load client that serves thousands of sockets.
    probe_sockets: int
    # Each client in a session of its own, so its scheduler autogroup can be
    # reniced apart from the bench's (set_priority("background")).
    own_sessions: bool = False


@dataclass
class ConnectSummary:
    """The outcome of opening a pool's sockets."""

    opened: int
    failed: int
    seconds: float
    failures: dict[str, int]
    subscribe_retries: int


class ClientProcess:
    """One loadclient.py child with a non-blocking line reader on its stdout."""

    def __init__(
        self, python: Path, arguments: list[str], own_session: bool = False
    ) -> None:
        self.process = subprocess.Popen(
            [str(python), str(LOADCLIENT), *arguments],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=own_session,
        )
        assert self.process.stdout is not None
        self.fd = self.process.stdout.fileno()
        os.set_blocking(self.fd, False)
        self.pending = b""
        self.lines: list[dict[str, Any]] = []

    @property
    def pid(self) -> int:
        return self.process.pid

    def read_available(self) -> None:
        """Move every complete line that can be read now into ``self.lines``."""
        while True:
            try:
                chunk = os.read(self.fd, 1 << 20)
            except BlockingIOError:
                break
            if not chunk:
                if self.process.poll() is None:
                    break
                raise ClientError(
                    f"load client {self.pid} exited with status "
                    f"{self.process.returncode}; see its messages above"
                )
            self.pending += chunk
        *complete, self.pending = self.pending.split(b"\n")
        self.lines.extend(orjson.loads(line) for line in complete if line)

    def send(self, command: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(orjson.dumps(command) + b"\n")
            self.process.stdin.flush()
        except BrokenPipeError as exc:
            raise ClientError(f"load client {self.pid} has exited") from exc

    def take(self, message_type: str) -> dict[str, Any] | None:
        """Remove and return the first message of ``message_type``, dropping older
        progress messages."""
        for index, message in enumerate(self.lines):
            if message["type"] == message_type:
                del self.lines[: index + 1]
                return message
        return None

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                self.send({"cmd": "exit"})
                assert self.process.stdin is not None
                self.process.stdin.close()
            except (ClientError, BrokenPipeError):
                pass
        try:
            self.process.wait(EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            log.warning("load client %d did not exit; killing it", self.pid)
            self.process.kill()
            self.process.wait()


class ClientPool:
    """The load-client processes that hold one set of sockets."""

    def __init__(self, plan: PoolPlan, python: Path) -> None:
        self.plan = plan
        self.clients: list[ClientProcess] = []
        base, extra = divmod(plan.sockets - plan.probe_sockets, plan.processes)
        first_index = 0
        for number in range(plan.processes):
            sockets = base + (1 if number < extra else 0)
            self.clients.append(
                ClientProcess(
                    python, self._arguments(sockets, first_index), plan.own_sessions
                )
            )
            first_index += sockets
        # Index of the probe process in the replies, or None without probe sockets.
        self.probe_index: int | None = None
        if plan.probe_sockets:
            self.probe_index = len(self.clients)
            arguments = self._arguments(plan.probe_sockets, first_index)
            self.clients.append(ClientProcess(python, arguments, plan.own_sessions))
        log.info(
            "started %d load clients (pids %s) for %d sockets via %s",
            len(self.clients),
            ", ".join(str(client.pid) for client in self.clients),
            plan.sockets,
            plan.via,
        )

    def _arguments(self, sockets: int, first_index: int) -> list[str]:
        plan = self.plan
        arguments = [
            "--sockets",
            str(sockets),
            "--first-index",
            str(first_index),
            "--topic",
            plan.topic,
            "--rate",
            str(plan.rate * sockets / plan.sockets),
            "--max-pending",
            str(max(1, plan.max_pending * sockets // plan.sockets)),
            "--connect-timeout",
            str(plan.connect_timeout),
            "--subscribe-retries",
            str(plan.subscribe_retries),
            "--max-lifetime",
            str(plan.max_lifetime),
        ]
        for target in plan.targets:
            arguments += ["--target", target]
        for source in plan.sources:
            arguments += ["--source-address", source]
        if plan.source_range:
            first, count = plan.source_range
            arguments += ["--source-range", first, str(count)]
        return arguments

    def pids(self) -> list[int]:
        return [client.pid for client in self.clients]

    def set_priority(self, priority: str) -> None:
        """Lower the scheduling priority of every load client to ``priority``.

        "idle" (SCHED_IDLE) keeps a woken client from preempting a server, but with
        autogroups the clients' session still gets its share at the next tick.
        "background" also sets each client's own autogroup to nice 19, so the pool
        must have been planned with ``own_sessions``. Leaving SCHED_IDLE needs
        CAP_SYS_NICE or a high enough RLIMIT_NICE, so the pool is closed afterwards.
        """
        for pid in self.pids():
            os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0))
            if priority == "background":
                set_autogroup_nice(pid, 19)

    def cpu_seconds(self) -> dict[int, float]:
        return {pid: read_cpu_seconds(pid) for pid in self.pids()}

    def _collect(
        self, message_type: str, deadline: float
    ) -> list[dict[str, Any] | None]:
        """Wait until every client sent a ``message_type`` message or the deadline."""
        replies: list[dict[str, Any] | None] = [None] * len(self.clients)
        selector = selectors.DefaultSelector()
        for client in self.clients:
            selector.register(client.fd, selectors.EVENT_READ, client)
        last_progress = time.monotonic()
        try:
            while None in replies and time.monotonic() < deadline:
                selector.select(min(1.0, max(0.0, deadline - time.monotonic())))
                for index, client in enumerate(self.clients):
                    if replies[index] is None:
                        client.read_available()
                        replies[index] = client.take(message_type)
                if time.monotonic() - last_progress >= PROGRESS_LOG_INTERVAL:
                    self._log_progress()
                    last_progress = time.monotonic()
        finally:
            selector.close()
        return replies

    def _log_progress(self) -> None:
        opened = failed = 0
        for client in self.clients:
            latest = [line for line in client.lines if line["type"] == "progress"]
            if latest:
                opened += latest[-1]["opened"]
                failed += latest[-1]["failed"]
        log.info(
            "... %d of %d sockets subscribed, %d failed",
            opened,
            self.plan.sockets,
            failed,
        )

    def wait_connected(self, deadline: float) -> ConnectSummary:
        replies = self._collect("connected", deadline)
        if None in replies:
            raise ClientError(
                f"opening {self.plan.sockets} sockets did not finish within the "
                "scenario's time limit; raise --time-limit or lower the size"
            )
        done = [reply for reply in replies if reply is not None]
        if not sum(reply["opened"] for reply in done):
            reasons = {k: v for reply in done for k, v in reply["failures"].items()}
            raise ClientError(
                f"none of the {self.plan.sockets} sockets subscribed via "
                f"{self.plan.via} ({', '.join(self.plan.targets)}): {reasons}"
            )
        failures: dict[str, int] = {}
        for reply in done:
            for reason, count in reply["failures"].items():
                failures[reason] = failures.get(reason, 0) + count
        return ConnectSummary(
            opened=sum(reply["opened"] for reply in done),
            failed=sum(reply["failed"] for reply in done),
            seconds=max(reply["connect_seconds"] for reply in done),
            failures=failures,
            subscribe_retries=sum(reply["subscribe_retries"] for reply in done),
        )

    def command(
        self, command: dict[str, Any], reply_type: str, timeout: float = 60.0
    ) -> list[dict[str, Any]]:
        """Send ``command`` to every client and return their replies."""
        for client in self.clients:
            client.send(command)
        replies = self._collect(reply_type, time.monotonic() + timeout)
        if None in replies:
            raise ClientError(
                f"a load client did not reply to {command['cmd']!r} within "
                f"{timeout:.0f} s"
            )
        return [reply for reply in replies if reply is not None]

    def stop(self) -> None:
        for client in self.clients:
            client.stop()
        log.info("stopped the load clients of %d sockets", self.plan.sockets)


def plan_processes(sockets: int, per_process: int) -> int:
    return max(1, math.ceil(sockets / per_process))


def set_autogroup_nice(pid: int, nice: int) -> None:
    """Set the nice value of the scheduler autogroup that ``pid`` belongs to.

    A kernel without autogroups has no such file, and nothing to set.
    """
    with contextlib.suppress(FileNotFoundError):
        Path(f"/proc/{pid}/autogroup").write_text(f"{nice}\n")
