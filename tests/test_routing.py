"""The papers' wiring, stated as tests of the routing plans."""

import numpy as np
import pytest

from mtl_core.models import build_plan, ModelConfig

TASKS = ("click", "like", "watch", "comment")
GROUPS = (0, 0, 1, 1)


def plan(arch, **kw):
    return build_plan(ModelConfig.for_arch(arch, **kw), TASKS, GROUPS)


def owner(name):
    return name.split(" ·")[0].split(" ")[0]


def test_mmoe_one_gate_per_task_over_all_experts():
    (level,) = plan("mmoe", experts=8).levels
    assert level.gate_names == TASKS and level.mask.shape == (4, 8) and level.mask.all()


def test_omoe_one_gate_feeds_every_tower():
    p = plan("omoe")
    assert p.levels[0].n_gates == 1 and p.tower_stream == (0, 0, 0, 0)


def test_shared_bottom_and_single_task():
    sb = plan("shared_bottom")
    assert sb.levels[0].n_experts == 1 and sb.tower_stream == (0,) * 4
    st = plan("single_task").levels[0]
    assert np.array_equal(st.mask, np.eye(4, dtype=bool))


def test_cgc_task_gate_never_sees_another_tasks_experts():
    (level,) = plan("cgc", experts=2, task_experts=2).levels
    for g, task in enumerate(level.gate_names):
        for e, (name, kind) in enumerate(zip(level.expert_names, level.expert_kinds)):
            allowed = kind == "shared" or owner(name) == task
            assert level.mask[g, e] == allowed, (task, name)


def test_ple_shared_gate_sees_all_on_non_last_levels_and_is_absent_on_last():
    p = plan("ple", levels=3, experts=2, task_experts=1)
    assert len(p.levels) == 3
    for level in p.levels[:-1]:
        assert level.gate_names[-1] == "shared" and level.mask[-1].all()
    assert "shared" not in p.levels[-1].gate_names


def test_ple_streams_task_experts_read_their_tasks_previous_output():
    p = plan("ple", levels=2, experts=2, task_experts=1)
    first, second = p.levels
    assert set(first.expert_stream) == {0} and set(first.gate_stream) == {0}
    K = len(TASKS)
    for name, kind, stream in zip(second.expert_names, second.expert_kinds, second.expert_stream):
        assert stream == (TASKS.index(owner(name)) if kind == "task" else K)
    assert second.gate_stream == tuple(range(K))
    assert p.tower_stream == tuple(range(K))


def test_home_task_gate_never_sees_another_groups_experts():
    meta, task = plan("home", experts=2, group_experts=2, task_experts=1).levels
    for level in (meta, task):
        for g, gate in enumerate(level.gate_names):
            gate_group = GROUPS[TASKS.index(gate)] if gate in TASKS else (int(gate.split()[1]) if gate.startswith("group") else None)
            for e, (name, kind) in enumerate(zip(level.expert_names, level.expert_kinds)):
                if gate_group is None:  # the global meta gate sees everything
                    assert level.mask[g, e]
                elif kind == "group":
                    assert level.mask[g, e] == (int(name.split()[1]) == gate_group)
                elif kind == "task":
                    assert level.mask[g, e] == (owner(name) == gate)
                else:
                    assert level.mask[g, e]


def test_home_without_hierarchy_mask_every_gate_sees_every_expert_of_its_level():
    on, off = plan("home"), plan("home", hierarchy_mask=False)
    for a, b in zip(on.levels, off.levels):
        assert b.mask.all() and a.expert_names == b.expert_names and a.expert_stream == b.expert_stream
        assert not a.mask.all()


def test_home_streams_groups_feed_their_tasks():
    meta, task = plan("home").levels
    assert meta.gate_names == ("group 0", "group 1", "global")
    for name, kind, stream in zip(task.expert_names, task.expert_kinds, task.expert_stream):
        if kind == "shared":
            assert stream == 2
        elif kind == "task":
            assert stream == GROUPS[TASKS.index(owner(name))]
    assert task.gate_stream == GROUPS


@pytest.mark.parametrize("arch", ["cgc", "ple", "home"])
def test_own_experts_are_a_subset_of_the_mask(arch):
    for level in plan(arch).levels:
        assert not (level.own & ~level.mask).any()
