"""The allocator setting applies where glibc is the C library, is done once, and changes no result."""

import platform

import torch

from mtl_core.models import build_model, ModelConfig
from mtl_core.train.memory import keep_freed_memory


def test_keep_freed_memory_applies_on_glibc_and_does_not_change_results():
    model = build_model(ModelConfig.for_arch("home"), ("task 0", "task 1"), (0, 1), 100, seed=0)
    x = torch.randn(64, 100, generator=torch.Generator().manual_seed(0))
    before = model(x)
    applied = keep_freed_memory()
    assert applied == (platform.system() == "Linux" and platform.libc_ver()[0] == "glibc")
    assert keep_freed_memory() is applied
    assert torch.equal(model(x), before)
