"""Process and machine facts for scripts/bench, read from /proc and a few commands."""

from __future__ import annotations

import logging
import os
import platform
import re
import resource
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("bench")

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SUPERVISOR_STATUS_LINE = re.compile(r"^(\S+)\s+RUNNING\s+pid (\d+)")


@dataclass(frozen=True)
class ServerProcesses:
    """Pids of the topology's parts. Each group includes the children of its pids."""

    vitrine: dict[str, int]
    haproxy: list[int]
    redis: list[int]

    def vitrine_pids(self) -> list[int]:
        return sorted(self.vitrine.values())


def read_cpu_times(pid: int) -> tuple[float, float]:
    """Return (utime, stime) of ``pid`` in seconds, or zeros when it has exited."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0, 0.0
    # The command name (field 2) may contain spaces, so split after its ")".
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS


def read_cpu_seconds(pid: int) -> float:
    """Return utime + stime of ``pid`` in seconds, or 0.0 when it has exited."""
    user, system = read_cpu_times(pid)
    return user + system


def process_age_seconds(pid: int) -> float:
    """Return how long ago ``pid`` started, from its starttime and /proc/uptime."""
    text = Path(f"/proc/{pid}/stat").read_text()
    start_ticks = int(text[text.rindex(")") + 2 :].split()[19])
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    return uptime - start_ticks / CLOCK_TICKS


def total_cpu_seconds(pids: Iterable[int]) -> float:
    return sum(read_cpu_seconds(pid) for pid in pids)


def total_system_seconds(pids: Iterable[int]) -> float:
    """Return the summed stime (CPU spent in the kernel) of ``pids``."""
    return sum(read_cpu_times(pid)[1] for pid in pids)


def read_rss_kib(pid: int) -> int:
    """Return VmRSS of ``pid`` in KiB, or 0 when it has exited."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


@dataclass(frozen=True)
class MachineCpu:
    """CPU seconds of all cores since boot, from the first line of /proc/stat."""

    busy: float
    interrupts: float


def read_machine_cpu() -> MachineCpu:
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(value) for value in fields]
    # user nice system idle iowait irq softirq steal; guest time is inside user.
    busy = sum(ticks[:8]) - ticks[3] - ticks[4]
    # With CONFIG_IRQ_TIME_ACCOUNTING the kernel charges this time to no process.
    interrupts = ticks[5] + ticks[6]
    return MachineCpu(busy / CLOCK_TICKS, interrupts / CLOCK_TICKS)


def children_of(pids: Iterable[int]) -> list[int]:
    """Return ``pids`` and all their descendants that are alive."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        parent = int(text[text.rindex(")") + 2 :].split()[1])
        parents.setdefault(parent, []).append(int(entry.name))
    found: list[int] = []
    queue = list(pids)
    while queue:
        pid = queue.pop()
        if pid in found:
            continue
        found.append(pid)
        queue.extend(parents.get(pid, []))
    return sorted(found)


def find_server_processes(repo_dir: Path, var_dir: Path) -> ServerProcesses:
    """Read the pids from supervisorctl and Redis's pid file under ``var_dir``."""
    command = [
        str(repo_dir / ".venv" / "bin" / "supervisorctl"),
        "-c",
        str(var_dir / "supervisord.conf"),
        "status",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    vitrine: dict[str, int] = {}
    haproxy: list[int] = []
    for line in result.stdout.splitlines():
        match = SUPERVISOR_STATUS_LINE.match(line)
        if not match:
            continue
        name, pid = match.group(1), int(match.group(2))
        if name.startswith("vitrine-"):
            vitrine[name] = pid
        elif name == "haproxy":
            haproxy = children_of([pid])
    if not vitrine:
        raise SystemExit(
            f"no RUNNING vitrine-K program in '{' '.join(command)}' (exit status "
            f"{result.returncode}): {result.stdout.strip() or result.stderr.strip()}; "
            "start the topology with scripts/run or pass the right --var-dir"
        )
    redis: list[int] = []
    redis_pidfile = var_dir / "run" / "redis.pid"
    if redis_pidfile.exists():
        redis = [int(redis_pidfile.read_text().strip())]
    else:
        log.warning("%s not found; Redis CPU is not measured", redis_pidfile)
    return ServerProcesses(vitrine=vitrine, haproxy=haproxy, redis=redis)


def command_output(command: list[str]) -> str:
    """Return the first line of a command's output, or "unknown" if it fails."""
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    lines = (result.stdout or result.stderr).strip().splitlines()
    return lines[0] if lines else "unknown"


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def memory_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024 / 1024
    return 0.0


def read_sysctl(name: str) -> str:
    path = Path("/proc/sys") / name.replace(".", "/")
    try:
        return " ".join(path.read_text().split())
    except OSError:
        return "unknown"


def python_package_versions(python: Path) -> str:
    """Return the Python, Tornado and uvloop versions of the servers' virtualenv."""
    code = (
        "import platform, tornado, uvloop; "
        "print(platform.python_version(), tornado.version, uvloop.__version__)"
    )
    output = command_output([str(python), "-c", code]).split()
    if len(output) != 3:
        return f"Python {sys.version.split()[0]} (bench); server versions unknown"
    return f"Python {output[0]}, Tornado {output[1]}, uvloop {output[2]}"


def git_revision(repo_dir: Path) -> str:
    revision = command_output(
        ["git", "-C", str(repo_dir), "rev-parse", "--short", "HEAD"]
    )
    status = command_output(
        ["git", "-C", str(repo_dir), "status", "--porcelain", "--untracked-files=no"]
    )
    dirty = status not in ("", "unknown")
    return f"{revision}{' with uncommitted changes' if dirty else ''}"


def describe_machine(repo_dir: Path) -> dict[str, str]:
    """Collect the facts a benchmark result is only meaningful with."""
    soft_files, hard_files = resource.getrlimit(resource.RLIMIT_NOFILE)
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": command_output(["nproc"]),
        "cpu model": cpu_model(),
        "memory": f"{memory_gib():.1f} GiB",
        "kernel": platform.release(),
        "software": python_package_versions(repo_dir / ".venv" / "bin" / "python"),
        "haproxy": command_output(["haproxy", "-v"]).split(" - ")[0],
        "redis": command_output(["redis-server", "--version"]).split(" sha=")[0],
        "server commit": git_revision(repo_dir),
        "open files": f"soft {soft_files}, hard {hard_files} per process",
        "ephemeral ports": read_sysctl("net.ipv4.ip_local_port_range"),
        "somaxconn": read_sysctl("net.core.somaxconn"),
        "tcp_max_syn_backlog": read_sysctl("net.ipv4.tcp_max_syn_backlog"),
    }


def ephemeral_port_count() -> int:
    low, high = (
        int(value) for value in read_sysctl("net.ipv4.ip_local_port_range").split()
    )
    return high - low + 1
