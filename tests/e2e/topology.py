"""A real topology for end-to-end tests: supervisord running Vitrine processes and
HAProxy on free loopback ports, with its files in a temporary directory."""

from __future__ import annotations

import http.client
import random
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import orjson

from server.topology import runtime_paths, write_configs

VENV_BIN = Path(sys.executable).parent
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
START_TIMEOUT = 30.0


def free_port_block(count: int) -> int:
    """Return a port P such that P+1 .. P+count are free on 127.0.0.1.

    The ports lie below the kernel's ephemeral range. A connect to a port inside it
    that nothing listens on yet can pick that same port as its source and connect
    to itself, and a readiness probe then reads back its own request.
    """
    lowest_ephemeral = int(
        Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0]
    )
    for _ in range(50):
        base = random.randrange(10000, lowest_ephemeral - count - 1)
        sockets = []
        try:
            for port in range(base + 1, base + count + 1):
                candidate = socket.socket()
                sockets.append(candidate)
                candidate.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for candidate in sockets:
                candidate.close()
    raise RuntimeError("no block of free ports found")


def http_get(
    url: str, cookie: str | None = None, timeout: float = 2.0
) -> tuple[int, bytes]:
    request = urllib.request.Request(url)
    if cookie:
        request.add_header("Cookie", cookie)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@dataclass
class Topology:
    var_dir: Path
    processes: int
    listen_port: int
    port_base: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.listen_port}"

    def process_url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.port_base + index}"

    @staticmethod
    def cookie(index: int) -> str:
        """The HAProxy cookie that pins a client to process ``index`` (1-based)."""
        return f"VITRINE_SRV=p{index}"

    def supervisorctl(self, *args: str) -> str:
        conf = runtime_paths(self.var_dir).supervisor_conf
        result = subprocess.run(
            [str(VENV_BIN / "supervisorctl"), "-c", str(conf), *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        return result.stdout + result.stderr

    def pid(self, index: int) -> int:
        output = self.supervisorctl("pid", f"vitrine-{index}").strip()
        return int(output)

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Wait until every process and HAProxy return 200 for /readyz."""
        deadline = time.monotonic() + timeout
        urls = [self.process_url(index) for index in range(1, self.processes + 1)]
        pending = [*urls, self.base_url]
        while pending and time.monotonic() < deadline:
            try:
                status, _ = http_get(pending[0] + "/readyz")
            except (OSError, http.client.HTTPException):
                status = 0
            if status == 200:
                pending.pop(0)
            else:
                time.sleep(0.2)
        if pending:
            raise AssertionError(
                f"not ready after {timeout}s: {pending}\n" + self.logs()
            )
        # HAProxy marks a server up after "rise 2" checks 1-2 s apart.
        self.wait_backends_up(deadline - time.monotonic())

    def wait_backends_up(self, timeout: float) -> None:
        deadline = time.monotonic() + max(timeout, 1.0)
        pids: set[int] = set()
        while time.monotonic() < deadline:
            pids = set()
            for index in range(1, self.processes + 1):
                try:
                    status, body = http_get(
                        self.base_url + "/healthz", self.cookie(index)
                    )
                except OSError:
                    continue
                if status == 200:
                    pids.add(orjson.loads(body)["pid"])
            if len(pids) == self.processes:
                return
            time.sleep(0.3)
        raise AssertionError(
            f"HAProxy reaches only {len(pids)} processes\n" + self.logs()
        )

    def logs(self) -> str:
        log_dir = runtime_paths(self.var_dir).log_dir
        parts = []
        for path in sorted(log_dir.glob("*.log")):
            parts.append(f"--- {path.name}\n" + path.read_text()[-3000:])
        return "\n".join(parts)

    def stop(self) -> None:
        self.supervisorctl("shutdown")
        pid_file = runtime_paths(self.var_dir).run_dir / "supervisord.pid"
        deadline = time.monotonic() + 40
        while pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)


def start_topology(var_dir: Path, env: dict[str, str], processes: int = 2) -> Topology:
    base = free_port_block(processes + 1)
    # Processes listen on base+1 .. base+processes and HAProxy on the next port.
    topology = Topology(
        var_dir=var_dir,
        processes=processes,
        listen_port=base + processes + 1,
        port_base=base,
    )
    conf, _ = write_configs(
        var_dir,
        processes=processes,
        listen_host="127.0.0.1",
        listen_port=topology.listen_port,
        port_base=base,
        env=env,
        haproxy_bin=HAPROXY,
        vitrine_bin=str(VENV_BIN / "vitrine"),
        haproxy_maxconn=2000,
        minfds=4096,
    )
    subprocess.run(
        [str(VENV_BIN / "supervisord"), "-c", str(conf)], check=True, timeout=30
    )
    try:
        topology.wait_ready()
    except BaseException:
        topology.stop()
        raise
    return topology
