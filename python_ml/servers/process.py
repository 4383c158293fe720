"""Start, watch and stop a background server process through its pid file and log."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from python_ml import config

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
# Lines of a server log quoted in an error message.
LOG_TAIL_LINES = 25
# Set in every server's environment to tell it from an unrelated process that
# reused the pid of a server that died without removing its pid file.
SERVER_ID_VARIABLE = "MUSICBOX_SERVER_ID"


class ServerError(RuntimeError):
    """A server failed to start, to stop or to respond."""


@dataclass(frozen=True)
class ServerFiles:
    """Pid file, log and working folder of one server under ``$MUSICBOX_DATA_DIR/servers/``.

    Attributes
    ----------
    name : str
        Short server name, such as ``thrift``; also the folder name.
    """

    name: str

    @property
    def directory(self) -> Path:
        """Folder holding the pid file, the log and the server's own state."""
        return config.data_dir() / "servers" / self.name

    @property
    def pid_file(self) -> Path:
        """File holding the process id while the server runs."""
        return self.directory / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        """Standard output and error of the current (or last) server process."""
        return self.directory / f"{self.name}.log"

    @property
    def server_id(self) -> str:
        """Value of ``MUSICBOX_SERVER_ID`` in the server's environment."""
        return f"{self.name}:{self.directory}"


def find_java() -> str:
    """Return the ``java`` executable, from ``JAVA_HOME`` first, then the path.

    Raises
    ------
    ServerError
        When no Java runtime is found.
    """
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if found:
        return found
    raise ServerError(
        "Java not found: install a Java 17 runtime (for example openjdk-17-jre-headless) "
        "or set JAVA_HOME"
    )


def is_listening(host: str, port: int, timeout: float = 1.0) -> bool:
    """Tell whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_free_port(host: str, port: int, server: str) -> None:
    """Raise ServerError when ``host:port`` is already taken by another process."""
    in_use = is_listening(host, port)
    if not in_use:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            # Java servers set SO_REUSEADDR too, so a port in TIME_WAIT is not taken.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as error:
                if error.errno != errno.EADDRINUSE:
                    raise
                in_use = True
    if in_use:
        raise ServerError(
            f"cannot start the {server}: port {port} on {host} is already in use; stop the "
            "process that holds it or choose another port"
        )


def free_port(host: str = LOOPBACK) -> int:
    """Return a TCP port that is free on ``host`` right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def read_pid(files: ServerFiles) -> int | None:
    """Return the pid in the server's pid file, or None when there is none."""
    try:
        text = files.pid_file.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


def is_alive(pid: int) -> bool:
    """Tell whether process ``pid`` exists and has not exited (a zombie counts as exited)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return True
    # The state letter follows the command name, which is in parentheses.
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _has_server_id(pid: int, files: ServerFiles) -> bool:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        # Without /proc (or its permission), trust the pid file.
        return True
    return f"{SERVER_ID_VARIABLE}={files.server_id}".encode() in environ.split(b"\0")


def running_pid(files: ServerFiles) -> int | None:
    """Return the pid of the running server, removing a pid file left by a dead one."""
    pid = read_pid(files)
    if pid is None:
        return None
    if is_alive(pid) and _has_server_id(pid, files):
        return pid
    logger.info("removing stale pid file %s of exited process %d", files.pid_file, pid)
    files.pid_file.unlink(missing_ok=True)
    return None


def log_tail(files: ServerFiles, lines: int = LOG_TAIL_LINES) -> str:
    """Return the last ``lines`` lines of the server log, or a note that it is empty."""
    try:
        text = files.log_file.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return "(no log written)"
    tail = text.splitlines()[-lines:]
    return "\n".join(tail) if tail else "(log is empty)"


def require_not_running(files: ServerFiles) -> None:
    """Raise ServerError when the pid file names a server process that is still running."""
    pid = running_pid(files)
    if pid is not None:
        raise ServerError(
            f"the {files.name} server is already running (pid {pid}, pid file {files.pid_file})"
        )


def spawn(
    files: ServerFiles,
    command: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> int:
    """Start ``command`` in its own session with its output in the server log.

    The previous log is kept as ``<name>.log.previous``. Returns the new pid,
    which is also written to the pid file.

    Raises
    ------
    ServerError
        When the pid file names a process that is still running.
    """
    require_not_running(files)
    files.directory.mkdir(parents=True, exist_ok=True)
    if files.log_file.exists():
        files.log_file.replace(files.log_file.with_name(files.log_file.name + ".previous"))
    process_env = dict(os.environ)
    process_env.update(env or {})
    process_env[SERVER_ID_VARIABLE] = files.server_id
    logger.debug("starting %s: %s", files.name, " ".join(command))
    with files.log_file.open("ab") as log:
        process = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=process_env,
            cwd=cwd or files.directory,
            start_new_session=True,
        )
    files.pid_file.write_text(f"{process.pid}\n", encoding="ascii")
    logger.info("%s started as pid %d, log %s", files.name, process.pid, files.log_file)
    return process.pid


def wait_until_ready(
    files: ServerFiles,
    pid: int,
    is_ready: Callable[[], bool],
    *,
    timeout: float,
    interval: float = 1.0,
    condition: str,
) -> None:
    """Poll ``is_ready`` until it returns True, the process exits or ``timeout`` seconds pass.

    Raises
    ------
    ServerError
        When the process exits first or the timeout passes; the message quotes
        the end of the log. A server that timed out is stopped.
    """
    deadline = time.monotonic() + timeout
    while True:
        if not is_alive(pid):
            files.pid_file.unlink(missing_ok=True)
            raise ServerError(
                f"the {files.name} server exited before {condition}; log {files.log_file} ends "
                f"with:\n{log_tail(files)}"
            )
        if is_ready():
            return
        if time.monotonic() >= deadline:
            stop(files)
            raise ServerError(
                f"timed out after {timeout:.0f} s waiting for the {files.name} server "
                f"({condition}); it was stopped. Log {files.log_file} ends with:\n{log_tail(files)}"
            )
        time.sleep(interval)


def stop(files: ServerFiles, timeout: float = 30.0) -> bool:
    """Stop the server's process group: SIGTERM, then SIGKILL after ``timeout`` seconds.

    Returns True when a running server was stopped and False when none was running.
    """
    pid = running_pid(files)
    if pid is None:
        return False
    logger.info("stopping %s (pid %d)", files.name, pid)
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while is_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if is_alive(pid):
        logger.warning(
            "%s (pid %d) ignored SIGTERM for %.0f s; killing it", files.name, pid, timeout
        )
        _signal_group(pid, signal.SIGKILL)
        while is_alive(pid):
            time.sleep(0.1)
    files.pid_file.unlink(missing_ok=True)
    logger.info("%s stopped", files.name)
    return True


def _signal_group(pid: int, signum: int) -> None:
    # spawn() starts each server as the leader of its own process group, so the
    # group id is the pid; the group also contains any child the server started.
    try:
        os.killpg(pid, signum)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, signum)
