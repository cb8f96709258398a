"""Choose the torch device once: `auto` prefers CUDA, then Apple MPS, then the CPU."""

from __future__ import annotations

import torch

from ..config import ConfigError

DEVICES = ("auto", "cpu", "cuda", "mps")


def available_devices() -> list[str]:
    found = ["cpu"]
    if torch.cuda.is_available():
        found.insert(0, "cuda")
    if torch.backends.mps.is_available():
        found.insert(0, "mps")
    return found


def resolve_device(name: str = "auto") -> torch.device:
    """The device for `name`; a clear `ConfigError` naming what is available when it is not there."""
    if name not in DEVICES:
        raise ConfigError(f"Unknown device '{name}'. Choose one of: {', '.join(DEVICES)}.")
    found = available_devices()
    if name == "auto":
        return torch.device(found[0])
    if name not in found:
        raise ConfigError(f"Device '{name}' is not available on this machine. Available: {', '.join(found)}.")
    return torch.device(name)
