"""This process's ID, kept up to date across ``fork`` without a system call per read.

``os.getpid()`` is a system call, and the checkpoint path asks for the pid on every call (step
names of a forked worker, the OpenTelemetry bridge's flush of spans ended in another process);
the pid only changes at ``fork``.
"""

from __future__ import annotations

import os

__all__ = ["current_pid"]

_pid = os.getpid()


def _after_fork() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_after_fork)


def current_pid() -> int:
    """This process's ID (the same as ``os.getpid()``)."""
    return _pid
