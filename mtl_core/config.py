"""Shared pieces of every settings dataclass: the error users see, and round-trips.

Each part of the library keeps its own frozen settings dataclass next to the code
that uses it (`DataConfig` in `data.py`, `ModelConfig` in `models/config.py`,
`TrainConfig` in `training.py`), validated in `__post_init__` with a
`ConfigError` that says what was wrong and what is allowed.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A setting a user gave is not allowed. The message says why and what is."""


def check(condition: bool, message: str) -> None:
    """Raise `ConfigError(message)` unless `condition` holds."""
    if not condition:
        raise ConfigError(message)


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a settings dataclass (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def from_dict(cls: type[T], values: dict[str, Any]) -> T:
    """Build `cls` from a dict such as `to_dict` made; unknown keys are refused.

    Lists become tuples (the dataclasses are frozen and hashable); validation runs
    as on any construction, so a bad value raises `ConfigError`.
    """
    if not isinstance(values, dict):
        raise ConfigError(f"{cls.__name__} settings must be a JSON object, got {type(values).__name__}.")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    check(not unknown, f"Unknown {cls.__name__} setting(s): {', '.join(unknown)}. Allowed: {', '.join(sorted(names))}.")
    return cls(**{k: _freeze(v) for k, v in values.items()})


def _freeze(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value
