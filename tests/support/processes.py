"""Process and port helpers shared by the local servers: free loopback ports, and stopping a
server by its PID (its own process group), never by name."""

from __future__ import annotations

import os
import signal
import socket
import time


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def stop_process_group(pid: int, timeout: float) -> None:
    """SIGTERM the server's own process group (it was started as a session leader), then SIGKILL."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            finished, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # not our child (started by another process): poll instead
            finished = 0 if alive(pid) else pid
        if finished:
            return
        time.sleep(0.2)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    try:  # reap it (a bounded wait: SIGKILL cannot be ignored), so no zombie is left behind
        deadline = time.monotonic() + 10
        while not os.waitpid(pid, os.WNOHANG)[0] and time.monotonic() < deadline:
            time.sleep(0.1)
    except ChildProcessError:
        pass


def descendants_running(fragment: str) -> list:
    """This process's living descendants whose command line contains ``fragment``; zombies and
    processes that end while being read are skipped (another test's child may be either)."""
    import psutil

    found = []
    for process in psutil.Process().children(recursive=True):
        try:
            if process.status() != psutil.STATUS_ZOMBIE and fragment in " ".join(process.cmdline()):
                found.append(process)
        except psutil.NoSuchProcess:  # ZombieProcess included
            continue
    return found


def tail(path, lines: int) -> str:
    """The last ``lines`` lines of a server's log file, for an error message; "(no log)" if unreadable."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def wait_for(condition, timeout: float, what: str = "the condition", interval: float = 1.0):
    """Poll ``condition`` until it returns something true (returned), for at most ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout:.0f}s")


def answers(url: str) -> bool:
    """An HTTP GET of ``url`` succeeds (a server's health endpoint, say)."""
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False
