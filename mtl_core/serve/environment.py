"""The server's environment variables, each read by one rule, with a clear message for a bad value.

    MTL_TORCH_THREADS       torch threads per training process (page process and each worker), 1..256; default 1
    MTL_WORKERS             training worker processes, 1..1024; default one per core
    MTL_RACE_IDLE_SECONDS   seconds a race may sit unheard before its worker lets it go, 1..86400; default 900
    MTL_JOB_SECONDS         seconds a page waits for a study before it says so and stops waiting, 1..86400; default 1800
    MTL_BACKEND             inprocess | processes | ray; default processes (MTL_RAY_ADDRESS implies ray)
    MTL_APP_PROCESSES       app processes serving the class on this machine, 1..64; default 1 (set by `serve`)

A bad value is a teacher's typo, not a student's input: it raises ConfigError naming the variable, the value
and what is allowed, and the app shows that message instead of starting workers that would die on it.
"""

from __future__ import annotations

import os

from ..config import ConfigError

BACKENDS = ("inprocess", "processes", "ray")


def whole(name: str, default: int | None, low: int, high: int) -> int | None:
    """The ASCII whole number in `name` (the default when unset or empty), else ConfigError."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    if not (text.isascii() and text.isdigit() and low <= int(text) <= high):
        raise ConfigError(f"The environment variable {name} = {text[:40]!r} is not allowed: it must be a whole number "
                          f"from {low} to {high:,} (or unset for {'the default' if default is None else default}).")
    return int(text)


def torch_threads() -> int:
    return whole("MTL_TORCH_THREADS", 1, 1, 256)


def workers() -> int | None:
    return whole("MTL_WORKERS", None, 1, 1024)


def app_processes() -> int:
    return whole("MTL_APP_PROCESSES", 1, 1, 64)


def race_idle_seconds() -> int:
    return whole("MTL_RACE_IDLE_SECONDS", 900, 1, 86_400)


def job_seconds() -> int:
    return whole("MTL_JOB_SECONDS", 1_800, 1, 86_400)


def backend() -> str:
    kind = "ray" if os.environ.get("MTL_RAY_ADDRESS") else (os.environ.get("MTL_BACKEND", "").strip() or "processes")
    if kind not in BACKENDS:
        raise ConfigError(f"The environment variable MTL_BACKEND = {kind[:40]!r} is not allowed: it must be one of "
                          f"{', '.join(BACKENDS)}.")
    return kind
