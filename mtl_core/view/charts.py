"""Altair chart builders: tidy DataFrames in, charts out (usable from a notebook; no Streamlit).

Colours are fixed per architecture and per task across every chart, so a learner can follow a
model from page to page. Sizes stay small: callers aggregate and subsample before charting.
"""

from __future__ import annotations

import json
from typing import Sequence

import altair as alt
import numpy as np
import pandas as pd

from ..diagnostics.recorder import COLLAPSED, TAKEN_OVER
from ..models import ARCHITECTURES, REGISTRY, RoutingPlan
from ..models.registry import ENTRY, label
TASK_COLORS = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#ff9da6", "#9d755d"]
KIND_COLORS = {"shared": "#4c78a8", "group": "#f58518", "task": "#54a24b"}


def per_level(chart: alt.TopLevelMixin, by: str = "column", **row) -> alt.FacetChart:
    """`chart` once per level of the model, headed "level 1", "level 2", ... (the name is computed in the
    spec, so a page can redraw the chart with new data; a header labelExpr is not applied by Streamlit)."""
    channel = alt.Row("level_name:N", title=None, header=alt.Header(labelAngle=0, labelAlign="left")) if by == "row" else \
        alt.Column("level_name:N", title=None, header=alt.Header(labelFontSize=12))
    return chart.facet(**{by: channel, **row}).transform_calculate(level_name="'level ' + datum.level")


def arch_labels(field: str) -> str:
    """A Vega expression that turns the architecture name in `field` into its label (MMoE, not mmoe)."""
    return " ".join(f"{field} == '{a.name}' ? '{a.label}' :" for a in REGISTRY.values()) + f" {field}"


ENTRY_COLORS = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#b279a2", "#eeca3b", "#72b7b2", "#9d755d", "#ff9da6", "#bab0ac")


def model_colors(keys: Sequence[str]) -> dict[str, str]:
    """The colour of each model of a race: its architecture's (the same on every page), or, when weightings race side
    by side ("mmoe+upgrad", several entries of one architecture), one of ENTRY_COLORS per entry in race order."""
    if any(ENTRY in k for k in keys):
        return {k: ENTRY_COLORS[i % len(ENTRY_COLORS)] for i, k in enumerate(keys)}
    return {k: REGISTRY[k].color for k in keys if k in REGISTRY}


def arch_color(present=None, field: str = "arch", legend: bool = True) -> alt.Color:
    """Fixed colour per architecture on every page (per entry when weightings race: `model_colors`); the legend lists
    the `present` ones, by their labels (no legend where the panels are headed by the model already)."""
    if present is not None and any(ENTRY in k for k in present):
        colors = model_colors(list(present))
        names = " ".join(f"datum.label == '{k}' ? '{label(k)}' :" for k in colors) + " datum.label"   # registry names only
        return alt.Color(f"{field}:N", title="model", scale=alt.Scale(domain=list(colors), range=list(colors.values())),
                         legend=alt.Legend(labelExpr=names) if legend else None)
    values = [a for a in ARCHITECTURES if present is None or a in set(present)]
    return alt.Color(f"{field}:N", title="model", scale=alt.Scale(domain=list(ARCHITECTURES), range=[a.color for a in REGISTRY.values()]),
                     legend=alt.Legend(labelExpr=arch_labels("datum.label"), values=values) if legend else None)


def task_color(tasks: int, field: str = "task") -> alt.Color:
    return alt.Color(f"{field}:N", title="task", scale=alt.Scale(domain=[f"task {k}" for k in range(tasks)],
                                                                 range=TASK_COLORS[:tasks]))


def routing_chart(plan: RoutingPlan) -> alt.Chart:
    """The architecture as a picture: one panel per level, gate x expert, filled where the gate may
    see the expert, coloured by the expert's kind (shared, group, task-specific)."""
    rows = []
    for number, level in enumerate(plan.levels, start=1):
        for g, gate in enumerate(level.gate_names):
            for e, expert in enumerate(level.expert_names):
                rows.append(dict(level=number, gate=gate, expert=expert, kind=level.expert_kinds[e],
                                 sees=bool(level.mask[g, e]), order=e))
    frame = pd.DataFrame(rows)
    return per_level(alt.Chart(frame).mark_rect(stroke="white", strokeWidth=1).encode(
        x=alt.X("expert:N", sort=alt.SortField("order"), title="experts", axis=alt.Axis(labelAngle=-45)),
        y=alt.Y("gate:N", sort=None, title="gates"),
        color=alt.condition("datum.sees", alt.Color("kind:N", title="expert kind",
                                                    scale=alt.Scale(domain=list(KIND_COLORS), range=list(KIND_COLORS.values()))),
                            alt.value("#eeeeee")),
        tooltip=["gate", "expert", "kind", "sees"],
    ).properties(width=alt.Step(16), height=alt.Step(18))).resolve_scale(x="independent")


def network_chart(network: pd.DataFrame, title: str = "", width: int = 560, small: bool = False) -> alt.Chart:
    """The network view (`network.frame`): input, experts, gates, towers and outputs left to right. A
    gate-to-expert edge is as wide as the gate's mean weight on the expert; an expert's fill is its share
    of outputs that are exactly zero (white = none, dark red = all); its ring is coloured by its kind.
    Hovering a node or an edge shows its numbers. `small` (a race's other models): rows closer together and
    only the gates, towers and outputs labelled (hover names the experts)."""
    nodes = network[network.part == "node"]
    height = max(120 if small else 200, (24 if small else 34) * int(nodes.groupby("column").size().max()))
    x = alt.X("column:Q", axis=None, scale=alt.Scale(domain=[-0.5, nodes.column.max() + 0.5]))
    y = alt.Y("row:Q", axis=None, scale=alt.Scale(domain=[nodes.row.max() + 0.7, nodes.row.min() - 0.7]))
    base = alt.Chart(network)
    streams = base.transform_filter("datum.kind == 'stream'").mark_rule(color="#bbbbbb", strokeWidth=1).encode(
        x=x, y=y, x2="column2:Q", y2="row2:Q")
    mixes = base.transform_filter("datum.kind == 'mix'").transform_calculate(width="0.3 + 7 * datum.weight").mark_rule(
        color="#1f77b4", opacity=0.75).encode(
        x=x, y=y, x2="column2:Q", y2="row2:Q", strokeWidth=alt.StrokeWidth("width:Q", scale=None, legend=None),
        tooltip=[alt.Tooltip("gate:N"), alt.Tooltip("expert:N"), alt.Tooltip("weight:Q", title="mean gate weight", format=".3f")])
    kinds = alt.Scale(domain=list(KIND_COLORS), range=list(KIND_COLORS.values()))
    experts = base.transform_filter("datum.role == 'expert'").mark_circle(size=90 if small else 260, strokeWidth=2 if small else 3,
                                                                          opacity=1).encode(
        x=x, y=y, stroke=alt.Stroke("kind:N", scale=kinds, legend=None),
        color=alt.condition("isValid(datum.zero_fraction)", alt.Color("zero_fraction:Q", scale=alt.Scale(domain=[0, 1], scheme="reds"),
                                                                       title="share of outputs = 0",
                                                                       legend=alt.Legend(gradientLength=90)), alt.value("white")),
        tooltip=[alt.Tooltip("label:N", title="expert"), alt.Tooltip("kind:N"),
                 alt.Tooltip("zero_fraction:Q", title="outputs exactly 0", format=".1%"), alt.Tooltip("std:Q", title="output std", format=".3f")])
    others = base.transform_filter("datum.part == 'node' && datum.role != 'expert'").mark_square(size=180, opacity=1).encode(
        x=x, y=y, color=alt.value("#555555"), tooltip=[alt.Tooltip("label:N", title="unit"), alt.Tooltip("role:N"), alt.Tooltip("kind:N")])
    labelled = "datum.part == 'node' && datum.role != 'expert'" if small else "datum.part == 'node'"
    labels = base.transform_filter(labelled).mark_text(dy=-11 if small else -15, fontSize=9 if small else 10, color="#333333").encode(
        x=x, y=y, text="label:N")
    return alt.layer(streams, mixes, experts, others, labels).properties(width=width, height=height, title=title)


def loss_decades(losses) -> tuple[float, float] | None:
    """The y-axis of a loss chart: the powers of ten around the positive losses (None when there are none)."""
    losses = np.asarray(losses, dtype=float)
    losses = losses[np.isfinite(losses) & (losses > 0)]
    if not len(losses):
        return None
    low = np.floor(np.log10(losses.min()))
    return 10.0 ** low, 10.0 ** max(np.ceil(np.log10(losses.max())), low + 1)


def loss_lines(history: pd.DataFrame, total_steps: int, decades: tuple[float, float] | None = None,
               archs: list[str] | None = None, legend: bool = True) -> alt.Chart:
    """Loss curves: history rows (arch, task, split, step, loss); colour = model, dash = split.

    Axes stay put while the curves grow: x spans the whole run, y the powers of ten around the losses
    (`decades`, computed from the losses when not given). The legend lists `archs` (default: those present).
    """
    decades = decades or loss_decades(history["loss"])
    return alt.Chart(history).mark_line(clip=True).encode(
        x=alt.X("step:Q", scale=alt.Scale(domain=[0, total_steps])),
        y=alt.Y("loss:Q", scale=alt.Scale(type="log", domain=list(decades) if decades else None), title="loss (log)"),
        color=arch_color(archs or history["arch"].unique(), legend=legend),
        strokeDash=alt.StrokeDash("split:N", scale=alt.Scale(domain=["train", "test"], range=[[1, 0], [4, 3]]),
                                  legend=alt.Legend() if legend else None),
        tooltip=["arch", "task", "split", "step", alt.Tooltip("loss:Q", format=".4f")])


def loss_chart(history: pd.DataFrame, tasks: int, total_steps: int, decades: tuple[float, float] | None = None,
               archs: list[str] | None = None, panel_width: int = 260) -> alt.Chart:
    """`loss_lines` in one panel per task, each `panel_width` pixels wide."""
    return loss_lines(history, total_steps, decades, archs).properties(width=panel_width, height=180).facet(
        column=alt.Column("task:N", sort=[f"task {k}" for k in range(tasks)], title=None))


def loss_panel(history: pd.DataFrame, task: str, total_steps: int, decades: tuple[float, float] | None = None,
               archs: list[str] | None = None) -> alt.Chart:
    """`loss_lines` of one task as a single chart that takes its container's width (a facet cannot), without a
    legend (`line_key` says it once above the panels): panels side by side in page columns fill a projector's
    screen at any width. Streamlit fits a stretched chart, axes included, into the height the page gives it."""
    return loss_lines(history, total_steps, decades, archs, legend=False).properties(title=task)


def line_key(archs: Sequence[str]) -> str:
    """The loss curves' legend as one line of HTML (registry colours and labels only, no user text)."""
    swatch = "display:inline-block;width:1.5em;height:0.3em;vertical-align:middle;margin:0 0.3em 0 0.8em;background:"
    models = "".join(f"<span style='{swatch}{color}'></span>{label(a)}" for a, color in model_colors(list(archs)).items())
    return f"<div>{models} &nbsp;·&nbsp; solid: training loss, dashed: test loss</div>"


def without_data(chart: alt.TopLevelMixin) -> dict:
    """A chart's Vega-Lite spec without its data, to be drawn many times with new data
    (`st.vega_lite_chart(data, spec=...)`): building the spec is the costly part of a redraw."""
    spec = chart.to_dict()
    spec.pop("data", None)
    spec.pop("datasets", None)
    return spec


def gate_heatmap(gates: pd.DataFrame) -> alt.Chart:
    """Mean gate weight per (gate, expert) from `diagnostics.gate_utilisation`; one panel per level."""
    base = alt.Chart(gates).encode(x=alt.X("expert:N", sort=None, axis=alt.Axis(labelAngle=-45)), y=alt.Y("gate:N", sort=None))
    cells = base.mark_rect().encode(color=alt.Color("mean:Q", title="mean weight", scale=alt.Scale(domain=[0, 1], scheme="blues")),
                                    tooltip=["gate", "expert", alt.Tooltip("mean:Q", format=".3f"), alt.Tooltip("std:Q", format=".3f")])
    text = base.mark_text(fontSize=9).encode(text=alt.Text("mean:Q", format=".2f"),
                                             color=alt.condition("datum.mean > 0.5", alt.value("white"), alt.value("black")))
    return per_level((cells + text).properties(width=alt.Step(30), height=alt.Step(22))).resolve_scale(x="independent")


def utilisation_bars(gates: pd.DataFrame) -> alt.Chart:
    """PLE's Fig. 8: per gate, a bar per expert (mean weight) with a rule for +- one std."""
    base = alt.Chart(gates).encode(x=alt.X("expert:N", sort=None, axis=alt.Axis(labelAngle=-45)))
    bars = base.mark_bar().encode(y=alt.Y("mean:Q", title="mean gate weight"),
                                  color=alt.Color("expert_kind:N", title="expert kind",
                                                  scale=alt.Scale(domain=list(KIND_COLORS), range=list(KIND_COLORS.values()))),
                                  tooltip=["gate", "expert", alt.Tooltip("mean:Q", format=".3f"), alt.Tooltip("std:Q", format=".3f")])
    rules = base.mark_rule().encode(y="low:Q", y2="high:Q")
    bars = (bars + rules).transform_calculate(low="max(datum.mean - datum.std, 0)", high="datum.mean + datum.std").properties(
        width=alt.Step(18), height=140)
    return per_level(bars, row=alt.Row("gate:N", title=None, header=alt.Header(labelAngle=0, labelAlign="left"))).resolve_scale(x="independent")


SPARSITY = {"zero_fraction": ("outputs exactly 0", "#d62728"), "near_zero_fraction": ("outputs |x| < 0.01", "#ff9896"),
            "dead_units": ("units 0 for every sample", "#7f7f7f")}


def sparsity_bars(experts: pd.DataFrame) -> alt.Chart:
    """Per expert: share of outputs exactly 0 (ReLU's ordinary sparsity), below 0.01 in magnitude, and share of
    units dead (0 for every sample of the snapshot), with a dashed line at HoME's collapse threshold (over 90%
    of outputs 0). Reads `diagnostics.expert_statistics` rows as they are (folded in Vega-Lite, so the spec can be
    reused with new data); a record from before `dead_units` existed has no third bar."""
    names = " ".join(f"datum.label == '{key}' ? '{title}' :" for key, (title, _) in SPARSITY.items()) + " datum.label"
    bars = alt.Chart().transform_fold(list(SPARSITY), as_=["measure", "share"]).mark_bar().encode(
        x=alt.X("expert:N", sort=None, axis=alt.Axis(labelAngle=-45)), xOffset=alt.XOffset("measure:N", sort=list(SPARSITY)),
        y=alt.Y("share:Q", scale=alt.Scale(domain=[0, 1]), title="share"),
        color=alt.Color("measure:N", scale=alt.Scale(domain=list(SPARSITY), range=[c for _, c in SPARSITY.values()]),
                        legend=alt.Legend(title=None, labelExpr=names)),
        tooltip=["expert", "measure:N", alt.Tooltip("share:Q", format=".2f")])
    collapse = alt.Chart().mark_rule(strokeDash=[4, 3], color="black").encode(y=alt.datum(COLLAPSED))
    return per_level(alt.layer(bars, collapse, data=experts).properties(width=alt.Step(12), height=150)).resolve_scale(x="independent")


def output_distribution(experts: pd.DataFrame) -> alt.Chart:
    """HoME's Fig. 2 idea: each expert's output distribution as a box (5/25/50/75/95% quantiles)."""
    base = alt.Chart(experts).encode(x=alt.X("expert:N", sort=None, axis=alt.Axis(labelAngle=-45)),
                                     color=alt.Color("kind:N", scale=alt.Scale(domain=list(KIND_COLORS), range=list(KIND_COLORS.values()))))
    whisker = base.mark_rule().encode(y=alt.Y("q05:Q", title="expert output"), y2="q95:Q")
    box = base.mark_bar(size=10).encode(y="q25:Q", y2="q75:Q", tooltip=["expert", "mean", "std", "q05", "q50", "q95"])
    median = base.mark_tick(color="black", size=10).encode(y="q50:Q")
    return per_level((whisker + box + median).properties(width=alt.Step(16), height=160)).resolve_scale(x="independent")


def occupancy_chart(occupancy: pd.DataFrame) -> alt.Chart:
    """Stacked share of each shared expert's gate mass by consumer; a dashed line at the takeover threshold (one
    colour past it: the expert is taken over)."""
    bars = alt.Chart().mark_bar().encode(
        x=alt.X("expert:N", sort=None, axis=alt.Axis(labelAngle=-45)), y=alt.Y("share:Q", stack="normalize", title="share of gate mass"),
        color=alt.Color("consumer:N", title="used by"), tooltip=["expert", "consumer", alt.Tooltip("share:Q", format=".2f"), "taken_over"])
    takeover = alt.Chart().mark_rule(strokeDash=[4, 3], color="black").encode(y=alt.datum(TAKEN_OVER))
    return per_level(alt.layer(bars, takeover, data=occupancy).properties(width=alt.Step(18), height=150)).resolve_scale(x="independent")


def reliance_chart(reliance: pd.DataFrame) -> alt.Chart:
    """Per task: the share of its expert mix from its own experts (through its gate, and through its self-gate where
    it has one), its group's and the shared ones; tasks ordered by positive rate. A record from before the self-gate
    was counted has no self-gate part."""
    parts = reliance.assign(self_gate=reliance.get("self_gate", pd.Series(0.0, index=reliance.index)).fillna(0.0))
    parts = parts.assign(own_gate=parts.own - parts.self_gate)
    names = {"own_gate": "own (gate)", "self_gate": "own (self-gate)", "group": "group", "shared": "shared"}
    long = parts.melt(id_vars=["level", "task", "positive_rate"], value_vars=list(names), var_name="experts", value_name="weight")
    long["experts"] = long.experts.map(names)
    long["label"] = long.apply(lambda r: r.task if pd.isna(r.positive_rate) else f"{r.task} (rate {r.positive_rate:.2f})", axis=1)
    return per_level(alt.Chart(long).mark_bar().encode(
        y=alt.Y("label:N", title=None, sort=alt.EncodingSortField("positive_rate")),
        x=alt.X("weight:Q", stack="zero", scale=alt.Scale(domain=[0, 1]), title="share of the task's expert mix"),
        color=alt.Color("experts:N", scale=alt.Scale(domain=list(names.values()),
                                                     range=[KIND_COLORS["task"], "#98df8a", KIND_COLORS["group"], KIND_COLORS["shared"]])),
        tooltip=["task", "experts", alt.Tooltip("weight:Q", format=".2f")],
    ).properties(width=320, height=alt.Step(20)), "row")


def conflict_chart(conflict: pd.DataFrame) -> alt.Chart:
    """Gradient cosine between task pairs over training; below 0 the tasks pull the shared experts apart."""
    frame = conflict.assign(pair=conflict.task_a + " / " + conflict.task_b)
    line = alt.Chart(frame).mark_line(point=True).encode(
        x=alt.X("step:Q", title="training step"), y=alt.Y("cosine:Q", scale=alt.Scale(domain=[-1, 1]), title="gradient cosine"),
        color=alt.Color("pair:N", title="tasks"),
        tooltip=["pair", "step", alt.Tooltip("cosine:Q", format=".2f")])
    zero = alt.Chart(pd.DataFrame({"y": [0]})).mark_rule(strokeDash=[3, 3]).encode(y="y:Q")
    return (line + zero).properties(width=520, height=200)


def gate_series_chart(frame: pd.DataFrame, value: str, title: str, domain: tuple[float, float] | None = None,
                      width: int = 520) -> alt.Chart:
    """One line per gate (named "level N · gate") of a per-snapshot gate table (`gate_polarisation`,
    `gate_drift`) over training: `value` against step."""
    return alt.Chart(frame).transform_calculate(gate_name="'level ' + datum.level + ' · ' + datum.gate").mark_line(point=True).encode(
        x=alt.X("step:Q", title="training step"),
        y=alt.Y(f"{value}:Q", title=title, scale=alt.Scale(domain=list(domain)) if domain else alt.Undefined),
        color=alt.Color("gate_name:N", title="gate"),
        tooltip=[alt.Tooltip("gate_name:N", title="gate"), "step:Q", alt.Tooltip(f"{value}:Q", format=".3f")],
    ).properties(width=width, height=180)


def task_series_chart(frame: pd.DataFrame, names: Sequence[str], titles: dict[str, str], task_names: Sequence[str],
                      width: int = 300) -> alt.Chart:
    """Per-task numbers over training (`diagnostics.task_frame` rows with `step`): one panel per `names`
    entry (side by side, titled by `titles`), one line per task in the task colours. The choice and the
    titles are made in the spec, so a page can redraw it with new rows."""
    shown = [titles[n] for n in names]
    title = " : ".join(f"datum.name == {json.dumps(n)} ? {json.dumps(titles[n])}" for n in names) + " : datum.name"
    return alt.Chart(frame).mark_line(point=True).encode(
        x=alt.X("step:Q", title="training step"), y=alt.Y("value:Q", title=None),
        color=alt.Color("task:N", title="task", scale=alt.Scale(domain=list(task_names), range=TASK_COLORS[:len(task_names)])),
        tooltip=["task", alt.Tooltip("title:N", title="what"), "step:Q", alt.Tooltip("value:Q", format=".4g")],
    ).properties(width=width, height=170).facet(column=alt.Column("title:N", title=None, sort=shown)).transform_filter(
        alt.FieldOneOfPredicate(field="name", oneOf=list(names))).transform_calculate(title=title).resolve_scale(y="independent")


def transfer_gain_chart(summary: pd.DataFrame) -> alt.Chart:
    """MTL gain per task (`experiments.transfer_summary`): single-task loss minus the loss with all tasks,
    one bar per task, one panel per architecture; right of 0, sharing helped the task."""
    return alt.Chart(summary).mark_bar().encode(
        y=alt.Y("task:N", title=None), x=alt.X("mtl_gain:Q", title="MTL gain (single-task loss − multi-task loss)"),
        color=alt.condition("datum.mtl_gain > 0", alt.value("#54a24b"), alt.value("#e45756")),
        tooltip=["arch", "task", alt.Tooltip("single_task:Q", format=".4f"), alt.Tooltip("all_tasks:Q", format=".4f"),
                 alt.Tooltip("mtl_gain:Q", format="+.4f")],
    ).properties(width=300, height=alt.Step(24)).facet(row=alt.Row("arch:N", title=None, header=alt.Header(labelAngle=0, labelAlign="left")))


def leave_one_out_chart(summary: pd.DataFrame) -> alt.Chart:
    """From `experiments.transfer_summary`: for each task (row) and each other task removed (column), how much
    the row task's loss fell when that task was left out (red: removing it helped, so it transferred negatively)."""
    removed = [c for c in summary.columns if c.startswith("without_")]
    long = summary.melt(id_vars=["arch", "task"], value_vars=removed, var_name="removed", value_name="change").dropna()
    long["removed"] = long["removed"].str.removeprefix("without_")
    base = alt.Chart(long).encode(x=alt.X("removed:N", title="task left out"), y=alt.Y("task:N", title="task measured"))
    limit = float(np.nanmax(np.abs(long["change"]))) if len(long) else 1.0
    cells = base.mark_rect().encode(color=alt.Color("change:Q", title="loss fell by", scale=alt.Scale(
        domain=[-limit, limit], scheme="redblue", reverse=True)),
        tooltip=["arch", "task", "removed", alt.Tooltip("change:Q", format="+.4f", title="loss fell by")])
    text = base.mark_text(fontSize=11).encode(text=alt.Text("change:Q", format="+.4f"))
    return (cells + text).properties(width=alt.Step(90), height=alt.Step(32)).facet(column=alt.Column("arch:N", title=None))


def seesaw_chart(summary: pd.DataFrame) -> alt.Chart:
    """PLE's Fig. 7 from `experiments.seesaw`'s summary (arch, correlation, task, mean, std): each task's MTL
    gain against the correlation, one panel per architecture, a rule at 0 gain."""
    tasks = list(dict.fromkeys(summary.task))
    lines = alt.Chart(summary).mark_line(point=True).encode(
        x=alt.X("correlation:Q", title="task correlation p"), y=alt.Y("mean:Q", title="MTL gain (MSE)"),
        color=alt.Color("task:N", scale=alt.Scale(domain=tasks, range=TASK_COLORS[:len(tasks)])),
        tooltip=["arch", "task", "correlation", alt.Tooltip("mean:Q", format="+.4f"), alt.Tooltip("std:Q", format=".4f")])
    zero = alt.Chart().mark_rule(strokeDash=[3, 3], color="gray").encode(y=alt.datum(0))
    return alt.layer(lines, zero, data=summary).properties(width=140, height=180).facet(column=alt.Column("arch:N", title=None))


def funnel_counts_chart(summary: dict) -> alt.Chart:
    """Impressions, clicks and conversions of a funnel (`funnel.funnel_summary`) as bars on a log scale."""
    frame = pd.DataFrame({"stage": ["impressions", "clicks", "conversions"],
                          "count": [summary["impressions"], summary["clicks"], max(summary["conversions"], 1)]})
    base = alt.Chart(frame).encode(y=alt.Y("stage:N", sort=None, title=None),
                                   x=alt.X("count:Q", scale=alt.Scale(type="log"), title="training rows (log scale)"))
    return (base.mark_bar(color="#637939") + base.mark_text(align="left", dx=4).encode(text=alt.Text("count:Q", format=","))
            ).properties(width=420, height=alt.Step(34))


QUALITY_TITLES = {"cvr_auc": "CVR AUC", "cvr_calibration": "CVR calibration: mean pCVR / true mean"}


def cvr_quality_chart(frame: pd.DataFrame, archs: Sequence[str]) -> alt.Chart:
    """A funnel race's CVR quality over training (rows arch, step, space, metric, value from the live
    evaluations): colour = model, solid = all impressions, dashed = clicked ones; a panel per metric, with a
    rule at calibration 1. Titles are set in the spec, so the page can redraw it with new rows."""
    title = " : ".join(f"datum.metric == {json.dumps(k)} ? {json.dumps(v)}" for k, v in QUALITY_TITLES.items()) + " : datum.metric"
    lines = alt.Chart(frame).mark_line(point=True).encode(
        x=alt.X("step:Q", title="training step"), y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False)),
        color=arch_color(archs), strokeDash=alt.StrokeDash("space:N", title="impressions", scale=alt.Scale(
            domain=["all", "clicked"], range=[[1, 0], [4, 3]])),
        tooltip=["arch", "space", "step", alt.Tooltip("value:Q", format=".3f")])
    return lines.properties(width=300, height=190).facet(
        column=alt.Column("title:N", title=None, sort=list(QUALITY_TITLES.values()))).transform_filter(
        alt.FieldOneOfPredicate(field="metric", oneOf=list(QUALITY_TITLES))).transform_calculate(title=title).resolve_scale(y="independent")


def matrix_chart(matrix: np.ndarray, title: str, names: Sequence[str] | None = None) -> alt.Chart:
    """A K x K matrix (target cosine or measured correlation) as a labelled heatmap on [-1, 1]; rows and
    columns are called `names` (default "task 0", "task 1", ...)."""
    k = matrix.shape[0]
    names = names or [f"task {i}" for i in range(k)]
    frame = pd.DataFrame([dict(row=names[i], col=names[j], value=float(matrix[i, j])) for i in range(k) for j in range(k)])
    base = alt.Chart(frame).encode(x=alt.X("col:N", title=None, sort=None), y=alt.Y("row:N", title=None, sort=None))
    return (base.mark_rect().encode(color=alt.Color("value:Q", scale=alt.Scale(domain=[-1, 1], scheme="redblue", reverse=True), legend=None))
            + base.mark_text().encode(text=alt.Text("value:Q", format=".2f"))).properties(title=title, width=alt.Step(44), height=alt.Step(30))


def scatter_chart(points: pd.DataFrame, x: str, y: str) -> alt.Chart:
    return alt.Chart(points).mark_circle(size=12, opacity=0.4).encode(x=alt.X(f"{x}:Q"), y=alt.Y(f"{y}:Q")).properties(width=300, height=300)


def label_correlation_chart(curve: pd.DataFrame) -> alt.Chart:
    """MMoE Fig. 2: measured label correlation (mean and +- 2 std over trials) against the cosine p; diagonal = p."""
    summary = curve.groupby("cosine")["label_correlation"].agg(["mean", "std"]).reset_index()
    summary["low"], summary["high"] = summary["mean"] - 2 * summary["std"], summary["mean"] + 2 * summary["std"]
    base = alt.Chart(summary).encode(x=alt.X("cosine:Q", title="cosine p of the weight vectors", scale=alt.Scale(domain=[-1, 1])))
    diagonal = alt.Chart(pd.DataFrame({"p": [-1, 1]})).mark_line(strokeDash=[4, 4], color="gray").encode(x="p:Q", y="p:Q")
    return (diagonal + base.mark_errorbar().encode(y=alt.Y("low:Q", title="measured label correlation"), y2="high:Q")
            + base.mark_line(point=True).encode(y="mean:Q", tooltip=["cosine", alt.Tooltip("mean:Q", format=".3f")])).properties(width=320, height=300)


def sweep_chart(runs: pd.DataFrame) -> alt.Chart:
    """MMoE Fig. 4 as small multiples: final loss against correlation per model, median with the
    25-75% band and every run as a dot."""
    color = arch_color(runs["arch"].unique(), legend=False)   # each panel is headed by its model
    base = alt.Chart(runs).encode(x=alt.X("correlation:Q", title="task correlation p"), color=color)
    band = base.mark_area(opacity=0.2).encode(y=alt.Y("q25:Q", title="final test loss"), y2="q75:Q")
    line = base.mark_line(point=True).encode(y="median:Q")
    dots = alt.Chart(runs).mark_circle(size=14, opacity=0.35).encode(x="correlation:Q", y="loss:Q", color=color)
    order = [REGISTRY[a].label for a in ARCHITECTURES if a in set(runs["arch"])]
    return (band + line + dots).transform_joinaggregate(
        median="median(loss)", q25="q1(loss)", q75="q3(loss)", groupby=["arch", "correlation"]).properties(
        width=220, height=200).facet(column=alt.Column("model:N", title=None, sort=order)).transform_calculate(
        model=arch_labels("datum.arch"))


def trainability_chart(runs: pd.DataFrame) -> alt.Chart:
    """MMoE Fig. 5: histograms of final loss over seeds, one row per correlation, models overlaid."""
    return alt.Chart(runs).mark_bar(opacity=0.55, binSpacing=0).encode(
        x=alt.X("loss:Q", bin=alt.Bin(maxbins=25), title="final test loss"), y=alt.Y("count():Q", stack=None, title="runs"),
        color=arch_color(runs["arch"].unique()), tooltip=["arch", "count()"]).properties(width=520, height=150).facet(row=alt.Row("correlation:N"))


def ablation_chart(summary: pd.DataFrame, metric: str, title: str) -> alt.Chart:
    """One bar per HoME arm for one summary column."""
    return alt.Chart(summary).mark_bar().encode(
        y=alt.Y("arm:N", sort=None, title=None), x=alt.X(f"{metric}:Q", title=title),
        color=alt.condition(alt.datum.arm == "HoME", alt.value("#d62728"), alt.value("#9e9e9e")),
        tooltip=["arm", alt.Tooltip(f"{metric}:Q", format=".3f")]).properties(width=260, height=alt.Step(20))


def prediction_chart(answers: Sequence[str], counts: Sequence[int], expected: int | None = None) -> alt.Chart:
    """A class's predictions: one bar per answer, how many students chose it; the lesson's answer green once
    `expected` is given (the teacher revealed it). Large type, for a projector."""
    frame = pd.DataFrame({"answer": list(answers), "students": list(counts),
                          "lesson": [i == expected for i in range(len(answers))]})
    color = alt.condition("datum.lesson", alt.value("#54a24b"), alt.value("#4c78a8"))
    return alt.Chart(frame, title="Predictions").mark_bar().encode(
        y=alt.Y("answer:N", sort=list(answers), title=None, axis=alt.Axis(labelLimit=520, labelFontSize=16)),
        x=alt.X("students:Q", title="students", axis=alt.Axis(tickMinStep=1, labelFontSize=14, titleFontSize=14)),
        color=color, tooltip=["answer", "students"],
    ).properties(height=alt.Step(44)).configure_title(fontSize=20)


def class_outcome_chart(results: pd.DataFrame, names: bool = True, held: bool = True) -> alt.Chart:
    """A class's finished runs (`results`: seed, held, model, loss, and number and name for the teacher): one dot per
    student per model at its final test loss, coloured (with `held`) by whether the student's run showed the lesson."""
    tooltip = (["number", "name"] if names else []) + ["seed", "model", alt.Tooltip("loss:Q", format=".4f"), "held"]
    return alt.Chart(results, title="Every student's run (one dot per student and model)").mark_circle(size=160, opacity=0.8).encode(
        y=alt.Y("model:N", title=None, axis=alt.Axis(labelFontSize=16)),
        x=alt.X("loss:Q", title="final test loss", scale=alt.Scale(zero=False), axis=alt.Axis(labelFontSize=14, titleFontSize=14)),
        yOffset=alt.YOffset("jitter:Q"),
        color=(alt.Color("held:N", title="showed the lesson", scale=alt.Scale(domain=[True, False], range=["#54a24b", "#e45756"]))
               if held else alt.value("#4c78a8")),
        tooltip=tooltip if held else [t for t in tooltip if t != "held"],
    ).transform_calculate(jitter="random()").properties(height=alt.Step(70)).configure_title(fontSize=20)
