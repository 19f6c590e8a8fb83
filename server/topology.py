"""Render the supervisord and HAProxy configurations for N Vitrine processes.

Process K listens on 127.0.0.1:(port_base + K). supervisord runs the processes and
HAProxy, and HAProxy spreads clients over the processes, pinning each browser to one
process with a cookie. ``python -m server.topology --help`` lists the options; the
templates are ``supervisor/supervisord.conf.in`` and ``haproxy/haproxy.cfg.in``.
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import os
import re
import shlex
import shutil
import stat
import string
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parent.parent
SUPERVISOR_TEMPLATE = REPO_DIR / "supervisor" / "supervisord.conf.in"
HAPROXY_TEMPLATE = REPO_DIR / "haproxy" / "haproxy.cfg.in"

# HAProxy uses two file descriptors per proxied connection. For maxconn 9000 (and
# maxpipes 0) HAProxy 2.6 sets ulimit-n to 18,031, which fits a per-process
# open-file limit of 20,000.
DEFAULT_HAPROXY_MAXCONN = 9000
# supervisord raises its open-file limit to this before it starts the children, which
# inherit it. It must not exceed the hard limit unless supervisord runs as root.
DEFAULT_MINFDS = 20000
DEFAULT_HAPROXY_BIN = "/usr/sbin/haproxy"
MAX_PROCESSES = 512

# Linux limits a unix socket path to 107 bytes. Both servers bind a temporary name
# first and rename it: HAProxy "<path>.<pid>.tmp" (2.6 rejects a stats socket path
# over 97 bytes) and supervisord "<path>.<pid>". A 7-digit pid and ".tmp" must fit.
MAX_SOCKET_PATH_BYTES = 107 - len(".4194304.tmp")
SUPERVISOR_SOCKET_NAME = "supervisor.sock"
HAPROXY_SOCKET_NAME = "haproxy.sock"
# Characters that need no quoting in either configuration format.
_PLAIN_PATH = re.compile(r"[A-Za-z0-9._/+-]+\Z")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# configparser, which supervisord uses, starts an inline comment at ";" or "#" after
# whitespace, even inside quotes.
_INLINE_COMMENT = re.compile(r"\s[;#]")

_PROGRAM_TEMPLATE = string.Template(
    """\
[program:vitrine-$index]
command=$command
directory=$repo_dir
environment=$environment
priority=100
autostart=true
autorestart=true
startsecs=2
startretries=5
stopsignal=TERM
; A process drains its connections for up to VITRINE_SHUTDOWN_TIMEOUT seconds
; (20 by default) after SIGTERM, so SIGKILL comes only after 30 seconds.
stopwaitsecs=30
stopasgroup=true
killasgroup=true
stdout_logfile=$log_dir/vitrine-$index.log
stdout_logfile_maxbytes=50MB
stdout_logfile_backups=5
redirect_stderr=true
"""
)


@dataclass(frozen=True)
class RuntimePaths:
    """Files that supervisord and HAProxy read or create under one var directory."""

    var_dir: Path
    run_dir: Path
    log_dir: Path
    socket_dir: Path
    supervisor_socket: Path
    haproxy_socket: Path
    supervisor_conf: Path
    haproxy_cfg: Path


def runtime_paths(var_dir: Path) -> RuntimePaths:
    """Return the configuration, log, pid and socket paths for ``var_dir``.

    Sockets go to ``var_dir/run`` unless that path is too long for a unix socket or
    needs quoting. They then go to a directory in the temporary directory named
    after a hash of ``var_dir``, so each var directory still gets its own sockets.
    """
    var_dir = var_dir.resolve()
    run_dir = var_dir / "run"
    socket_dir = run_dir
    if not _socket_dir_usable(socket_dir):
        digest = hashlib.sha256(str(var_dir).encode()).hexdigest()[:12]
        name = f"vitrine-{os.getuid()}-{digest}"
        candidates = [Path(tempfile.gettempdir()) / name, Path("/tmp") / name]
        usable = [path for path in candidates if _socket_dir_usable(path)]
        if not usable:
            raise ValueError(
                f"no directory for unix sockets: {run_dir} and {candidates[0]} are "
                f"longer than {MAX_SOCKET_PATH_BYTES} bytes or contain characters "
                "other than letters, digits and ._/+-"
            )
        socket_dir = usable[0]

    return RuntimePaths(
        var_dir=var_dir,
        run_dir=run_dir,
        log_dir=var_dir / "log",
        socket_dir=socket_dir,
        supervisor_socket=socket_dir / SUPERVISOR_SOCKET_NAME,
        haproxy_socket=socket_dir / HAPROXY_SOCKET_NAME,
        supervisor_conf=var_dir / "supervisord.conf",
        haproxy_cfg=var_dir / "haproxy.cfg",
    )


def _socket_dir_usable(directory: Path) -> bool:
    for name in (SUPERVISOR_SOCKET_NAME, HAPROXY_SOCKET_NAME):
        path = str(directory / name)
        if len(path.encode()) > MAX_SOCKET_PATH_BYTES or not _PLAIN_PATH.match(path):
            return False
    return True


def check_ports(processes: int, listen_port: int, port_base: int) -> None:
    """Raise ValueError unless the listener and process ports are valid and apart."""
    if not 1 <= processes <= MAX_PROCESSES:
        raise ValueError(f"invalid process count {processes}: use 1 to {MAX_PROCESSES}")
    if not 1 <= listen_port <= 65535:
        raise ValueError(f"invalid listen port {listen_port}: use 1 to 65535")
    first_port = port_base + 1
    last_port = port_base + processes
    if first_port < 1 or last_port > 65535:
        raise ValueError(
            f"invalid port base {port_base}: process ports {first_port}..{last_port} "
            "must lie within 1..65535"
        )
    if first_port <= listen_port <= last_port:
        raise ValueError(
            f"listen port {listen_port} collides with the process ports "
            f"{first_port}..{last_port}; change the listen port or the port base"
        )


def process_ports(processes: int, port_base: int) -> list[int]:
    """Return the loopback port of each process, process 1 first."""
    return [port_base + index for index in range(1, processes + 1)]


def format_bind_address(host: str, port: int) -> str:
    """Format ``host:port`` for an HAProxy ``bind`` line.

    An empty host or ``*`` binds every IPv4 address. An IPv6 address gets the
    ``ipv6@`` prefix because a bare one would be ambiguous with the port colon.
    """
    if host in ("", "*"):
        return f":{port}"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if not re.fullmatch(r"[A-Za-z0-9.-]+", host):
            raise ValueError(
                f"invalid listen host {host!r}: use an IP address or a host name"
            ) from None
        return f"{host}:{port}"
    if address.version == 6:
        return f"ipv6@{address}:{port}"
    return f"{address}:{port}"


def render_haproxy_cfg(
    *,
    processes: int,
    listen_host: str,
    listen_port: int,
    port_base: int,
    stats_socket: Path,
    maxconn: int = DEFAULT_HAPROXY_MAXCONN,
    template: Path = HAPROXY_TEMPLATE,
) -> str:
    """Render the HAProxy configuration with one backend server per process."""
    check_ports(processes, listen_port, port_base)
    if maxconn < 1:
        raise ValueError(f"invalid HAProxy maxconn {maxconn}: use a positive number")
    _check_plain_path(stats_socket, "HAProxy stats socket")

    server_lines = []
    for index, port in enumerate(process_ports(processes, port_base), start=1):
        server_lines.append(
            f"    server p{index} 127.0.0.1:{port} cookie p{index} check"
        )

    return string.Template(template.read_text()).substitute(
        maxconn=maxconn,
        stats_socket=stats_socket,
        bind_address=format_bind_address(listen_host, listen_port),
        servers="\n".join(server_lines),
        errors_dir=HAPROXY_TEMPLATE.parent / "errors",
    )


def render_supervisor_conf(
    *,
    processes: int,
    port_base: int,
    env: Mapping[str, str],
    paths: RuntimePaths,
    haproxy_bin: str = DEFAULT_HAPROXY_BIN,
    vitrine_bin: str | None = None,
    repo_dir: Path = REPO_DIR,
    minfds: int = DEFAULT_MINFDS,
    template: Path = SUPERVISOR_TEMPLATE,
) -> str:
    """Render the supervisord configuration for the processes and HAProxy.

    Every Vitrine process gets ``env`` as its environment on top of supervisord's
    own. ``vitrine_bin`` defaults to the ``vitrine`` script next to the running
    Python, which is the virtualenv's when run as ``.venv/bin/python``.
    """
    if vitrine_bin is None:
        vitrine_bin = str(Path(sys.executable).parent / "vitrine")
    if minfds < 1:
        raise ValueError(f"invalid minfds {minfds}: use a positive number")
    _check_plain_path(paths.supervisor_socket, "supervisord socket")
    environment = format_supervisor_environment(env)

    programs = []
    for index, port in enumerate(process_ports(processes, port_base), start=1):
        command = shlex.join([vitrine_bin, "serve", "--port", str(port)])
        programs.append(
            _PROGRAM_TEMPLATE.substitute(
                index=index,
                command=_supervisor_value(command, "vitrine command"),
                repo_dir=_supervisor_value(str(repo_dir), "repository directory"),
                environment=environment,
                log_dir=_supervisor_value(str(paths.log_dir), "log directory"),
            )
        )

    return string.Template(template.read_text()).substitute(
        supervisor_socket=paths.supervisor_socket,
        log_dir=_supervisor_value(str(paths.log_dir), "log directory"),
        run_dir=_supervisor_value(str(paths.run_dir), "run directory"),
        repo_dir=_supervisor_value(str(repo_dir), "repository directory"),
        minfds=minfds,
        vitrine_programs="\n".join(programs),
        haproxy_bin=_supervisor_value(shlex.quote(haproxy_bin), "HAProxy binary"),
        haproxy_cfg=_supervisor_value(
            shlex.quote(str(paths.haproxy_cfg)), "HAProxy configuration"
        ),
    )


def format_supervisor_environment(env: Mapping[str, str]) -> str:
    """Format ``env`` as the value of a supervisord ``environment=`` line.

    supervisord splits the line with a non-POSIX shlex and strips quotes from each
    value, and it has no escape character. So a value cannot contain a double
    quote, a control character or an inline comment, nor start or end with a single
    quote. Error messages name the variable but never show its value.
    """
    pairs = []
    for name, value in sorted(env.items()):
        if not _ENV_NAME.match(name):
            raise ValueError(
                f"invalid environment variable name {name!r}: use letters, digits "
                "and underscores, not starting with a digit"
            )
        problem = _environment_value_problem(value)
        if problem is not None:
            raise ValueError(
                f"environment variable {name} cannot be written to supervisord.conf "
                f"because its value {problem}; choose a value without it"
            )
        pairs.append(f'{name}="{value.replace("%", "%%")}"')
    return ",".join(pairs)


def _environment_value_problem(value: str) -> str | None:
    if '"' in value:
        return "contains a double quote"
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        return "contains a control character"
    if value.startswith("'") or value.endswith("'"):
        return "starts or ends with a single quote"
    if _INLINE_COMMENT.search(value):
        return "contains ';' or '#' after whitespace"
    return None


def _supervisor_value(value: str, description: str) -> str:
    """Escape ``%`` for supervisord's expansion and reject unrepresentable text."""
    if "\n" in value or "\r" in value or _INLINE_COMMENT.search(value):
        raise ValueError(
            f"invalid {description} {value!r} for supervisord.conf: it contains a line "
            "break or ';' or '#' after whitespace"
        )
    return value.replace("%", "%%")


def _check_plain_path(path: Path, description: str) -> None:
    if not _PLAIN_PATH.match(str(path)):
        raise ValueError(
            f"invalid {description} path {str(path)!r}: use only letters, digits "
            "and ._/+-"
        )
    if len(str(path).encode()) > MAX_SOCKET_PATH_BYTES:
        raise ValueError(
            f"{description} path {str(path)!r} is longer than "
            f"{MAX_SOCKET_PATH_BYTES} bytes"
        )


def write_configs(
    var_dir: Path,
    processes: int,
    listen_host: str,
    listen_port: int,
    port_base: int,
    env: Mapping[str, str],
    *,
    haproxy_bin: str | None = None,
    vitrine_bin: str | None = None,
    repo_dir: Path = REPO_DIR,
    haproxy_maxconn: int = DEFAULT_HAPROXY_MAXCONN,
    minfds: int = DEFAULT_MINFDS,
) -> tuple[Path, Path]:
    """Write ``supervisord.conf`` and ``haproxy.cfg`` into ``var_dir``.

    Creates the log, run and socket directories. Each file is replaced atomically,
    so a reload never reads half a file. ``supervisord.conf`` gets mode 600 because
    it contains ``env``. Returns the paths of the two files in that order.
    """
    if haproxy_bin is None:
        haproxy_bin = shutil.which("haproxy") or DEFAULT_HAPROXY_BIN
    paths = runtime_paths(var_dir)
    haproxy_cfg = render_haproxy_cfg(
        processes=processes,
        listen_host=listen_host,
        listen_port=listen_port,
        port_base=port_base,
        stats_socket=paths.haproxy_socket,
        maxconn=haproxy_maxconn,
    )
    supervisor_conf = render_supervisor_conf(
        processes=processes,
        port_base=port_base,
        env=env,
        paths=paths,
        haproxy_bin=haproxy_bin,
        vitrine_bin=vitrine_bin,
        repo_dir=repo_dir,
        minfds=minfds,
    )

    for directory in (paths.var_dir, paths.log_dir, paths.run_dir):
        directory.mkdir(parents=True, exist_ok=True)
    _make_private_dir(paths.socket_dir)
    _write_atomically(paths.haproxy_cfg, haproxy_cfg, 0o644)
    _write_atomically(paths.supervisor_conf, supervisor_conf, 0o600)
    return paths.supervisor_conf, paths.haproxy_cfg


def _make_private_dir(directory: Path) -> None:
    """Create ``directory`` with mode 700, or check that an existing one is ours.

    A directory in a shared temporary directory could have been created by another
    user to capture the sockets, so anything but our own real directory is rejected.
    """
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = directory.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise ValueError(
            f"socket directory {directory} is not a directory owned by uid "
            f"{os.getuid()}; remove it and run again"
        )
    if stat.S_IMODE(info.st_mode) & 0o077:
        directory.chmod(0o700)


def _write_atomically(path: Path, text: str, mode: int) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(text)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def read_env_file(path: Path) -> dict[str, str]:
    """Read ``NAME=value`` lines from ``path``.

    Blank lines and lines starting with ``#`` are skipped. Values are taken
    literally up to the end of the line, with no quoting or escapes.
    """
    env: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, separator, value = line.partition("=")
        if not separator or not _ENV_NAME.match(name):
            raise ValueError(
                f"{path}:{number}: invalid line; expected NAME=value with a name of "
                "letters, digits and underscores"
            )
        env[name] = value
    return env


def build_parser() -> argparse.ArgumentParser:
    """Build the command-line parser of ``python -m server.topology``."""
    parser = argparse.ArgumentParser(
        prog="python -m server.topology",
        description=(
            "Write supervisord.conf and haproxy.cfg for N Vitrine processes into a "
            "var directory."
        ),
    )
    parser.add_argument(
        "--processes", type=int, required=True, help="number of Vitrine processes"
    )
    parser.add_argument(
        "--listen-host",
        default="0.0.0.0",
        help="address HAProxy listens on (default: %(default)s)",
    )
    parser.add_argument(
        "--listen-port",
        type=int,
        default=8080,
        help="TCP port HAProxy listens on (default: %(default)s)",
    )
    parser.add_argument(
        "--port-base",
        type=int,
        default=8100,
        help=("process K listens on 127.0.0.1 port PORT_BASE+K (default: %(default)s)"),
    )
    parser.add_argument(
        "--var-dir",
        type=Path,
        default=Path("var"),
        help="directory for the configurations, logs and pid files "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--env-file",
        type=Path,
        help="file of NAME=value lines passed to every Vitrine process as its "
        "environment",
    )
    parser.add_argument(
        "--haproxy-bin",
        help="HAProxy executable (default: haproxy on PATH, else "
        f"{DEFAULT_HAPROXY_BIN})",
    )
    parser.add_argument(
        "--vitrine-bin",
        help="vitrine executable (default: the one next to this Python)",
    )
    parser.add_argument(
        "--haproxy-maxconn",
        type=int,
        default=DEFAULT_HAPROXY_MAXCONN,
        help="HAProxy global maxconn, in client connections (default: %(default)s)",
    )
    parser.add_argument(
        "--minfds",
        type=int,
        default=DEFAULT_MINFDS,
        help="open-file limit supervisord sets for itself and its programs "
        "(default: %(default)s)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = build_parser().parse_args(argv)
    try:
        env = read_env_file(args.env_file) if args.env_file is not None else {}
        supervisor_conf, haproxy_cfg = write_configs(
            args.var_dir,
            args.processes,
            args.listen_host,
            args.listen_port,
            args.port_base,
            env,
            haproxy_bin=args.haproxy_bin,
            vitrine_bin=args.vitrine_bin,
            haproxy_maxconn=args.haproxy_maxconn,
            minfds=args.minfds,
        )
    except (OSError, ValueError) as exc:
        print(f"server.topology: error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {supervisor_conf}")
    print(f"wrote {haproxy_cfg}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
