"""Processes on this machine: whether one still runs, and a name for "this machine and
PID namespace" under which a process id means the same process (the answer journal's
owners, the embedded server's holders)."""
from __future__ import annotations

import os
import socket


def alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie, killed and not yet reaped, does not)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def machine() -> str:
    """Host name and PID namespace: two processes with the same `machine()` see each
    other's process ids (containers with one host name but their own namespaces differ).
    Empty where the namespace cannot be read (not Linux): no such comparison then."""
    try:
        ns = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return ""
    return f"{socket.gethostname()[:120]}/{ns}"
