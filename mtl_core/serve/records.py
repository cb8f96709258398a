"""Run records: a finished (or interrupted) run as plain JSON, and the check a file must pass before
any of its runs is used.

A record holds the run's settings, its loss curves, its final test metrics and its diagnostics
tables (one row per snapshot and gate, expert, ...; see diagnostics.py). Students download and
upload them, so an uploaded record is untrusted: `read_records` checks every table and column the
pages read, their types, that numbers are finite where they must be, that steps agree, and that
sizes are sane; the file is taken whole or refused whole.
"""

from __future__ import annotations

import base64
import json
import math
import re
from typing import TYPE_CHECKING, Any, Callable, Iterable

from ..models.registry import ARCHITECTURES
from ..settings.jsonfile import load_json
from ..settings.knob import shorten
from ..settings.links import check_values
from ..train.weighting import STATE_TITLES

if TYPE_CHECKING:
    import pandas as pd

MAX_FILE = 20_000_000     # bytes: the app's upload limit; a run is ~0.1-1 MB
MAX_RECORDS = 200
MAX_ROWS = 200_000        # per table of one record (a 200-epoch race with snapshots every 50 steps has ~30,000)
MAX_TEXT = 80
MAX_SNAPSHOTS = 200       # snapshot steps kept of an uploaded run (the timeline's stops; a 200-epoch race has 312)
MAX_POINTS = 1_000        # points kept per loss curve of an uploaded run (the charts draw 120)
MAX_WEIGHTS = 8_000_000   # characters of a run's trained weights (base64 safetensors; the app's largest model is ~1 MB)
BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


def _text(v) -> bool:
    return isinstance(v, str) and 0 < len(v) <= MAX_TEXT


def _count(v) -> bool:
    return type(v) is int and 0 <= v <= 10**9


def _number(v) -> bool:
    return type(v) in (int, float) and math.isfinite(v)


def _maybe(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: v is None or check(v)


def _share(v) -> bool:
    return _number(v) and -1e-6 <= v <= 1 + 1e-6  # sums of float32 weights round a little past 1


def _bool(v) -> bool:
    return type(v) is bool


def _added(column: "Column") -> "Column":
    """A column added after run files were first written: a row of an older file may lack it (read as null)."""
    check = _maybe(column)
    check.added = True
    return check


TEXT, COUNT, NUMBER, SHARE, BOOL = _text, _count, _number, _share, _bool
Column = Callable[[Any], bool]

# The tables of a record and the columns the pages and charts read ("member" is a grid member, 0 here).
HISTORY = {"arch": TEXT, "task": TEXT, "split": lambda v: v in ("train", "test"), "step": COUNT, "loss": _maybe(NUMBER)}
METRICS = {"split": lambda v: v in ("validation", "test"), "task": TEXT, "metric": TEXT, "value": _maybe(NUMBER)}
DIAGNOSTICS: dict[str, dict[str, Column]] = {
    "gates": {"step": COUNT, "level": COUNT, "gate": TEXT, "gate_kind": TEXT, "expert": TEXT, "expert_kind": TEXT,
              "mean": SHARE, "std": SHARE},
    "polarisation": {"step": COUNT, "level": COUNT, "gate": TEXT, "entropy": SHARE, "top_expert": TEXT, "top_weight": SHARE,
                     "polarised": BOOL, "sample_polarised": SHARE},
    "experts": {"step": COUNT, "level": COUNT, "expert": TEXT, "kind": TEXT, "zero_fraction": SHARE, "near_zero_fraction": SHARE,
                "dead_units": _added(SHARE),
                "mean": NUMBER, "std": NUMBER, "q05": NUMBER, "q25": NUMBER, "q50": NUMBER, "q75": NUMBER, "q95": NUMBER},
    "spread": {"step": COUNT, "level": COUNT, "std_max_over_min": NUMBER},
    "occupancy": {"step": COUNT, "level": COUNT, "expert": TEXT, "consumer": TEXT, "share": SHARE, "top_share": SHARE,
                  "taken_over": BOOL},
    "reliance": {"step": COUNT, "level": COUNT, "task": TEXT, "own": SHARE, "group": SHARE, "shared": SHARE,
                 "self_gate": _added(SHARE), "positive_rate": _maybe(SHARE)},
    "conflict": {"step": COUNT, "task_a": TEXT, "task_b": TEXT, "cosine": _maybe(lambda v: _number(v) and -1.001 <= v <= 1.001)},
    "drift": {"step": COUNT, "level": COUNT, "gate": TEXT, "js_divergence": NUMBER},
    "gradients": {"step": COUNT, "task": TEXT, "name": lambda v: v == "grad_norm", "value": _maybe(NUMBER)},
    "weighting": {"step": COUNT, "task": TEXT, "name": lambda v: v in STATE_TITLES, "value": _maybe(NUMBER)},
    "funnel": {"step": COUNT, "space": lambda v: v in ("all", "clicked"), "metric": TEXT, "value": _maybe(NUMBER)},
}
REQUIRED_DIAGNOSTICS = ("gates", "experts")   # every snapshot has them; the others depend on the architecture
EVALUATIONS = ("funnel",)                     # tables of evaluations (every 50 steps and the last), not of snapshots


def clean(value: Any, digits: int | None = None) -> Any:
    """JSON-ready: NaN and infinities become null, numpy arrays, scalars and tuples plain Python; with `digits`,
    floats rounded to that many decimals (the command line's output)."""
    if isinstance(value, dict):
        return {str(k): clean(v, digits) for k, v in value.items()}
    if getattr(value, "ndim", 0) > 0 and hasattr(value, "tolist"):   # a numpy array
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [clean(v, digits) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return round(value, digits) if digits is not None and isinstance(value, float) else value


def run_record(name: str, arch: str, status: str, step: int, settings: dict, history: list[dict],
               metrics: "pd.DataFrame | None", positive_rate: Iterable, tables: "dict[str, pd.DataFrame]",
               weights: bytes | None = None) -> dict:
    """A run as a record: `history` rows (arch, task, split, step, loss), the latest test `metrics`,
    the diagnostics `tables` (name -> frame, see diagnostics.DiagnosticsRecorder.frame) and, once it
    finished, its trained `weights` (a state dict as safetensors bytes, kept as base64, to export the model)."""
    rows = lambda frame: frame.drop(columns="member", errors="ignore").to_dict(orient="records")
    record = clean(dict(id=name, arch=arch, status=status, step=step, settings=settings, history=history,
                        metrics=[] if metrics is None else rows(metrics), positive_rate=list(positive_rate),
                        diagnostics={table: rows(frame) for table, frame in tables.items()}))
    if weights is not None:
        record["weights"] = base64.b64encode(weights).decode()
    return record


def dumps(records: list[dict]) -> str:
    """Records as strict JSON (what the app offers for download)."""
    return json.dumps(clean(records), allow_nan=False)


class RecordError(ValueError):
    """A file is not a set of run records from this app; the message says where and what."""


def _rows(rows: Any, columns: dict[str, Column], where: str) -> list[dict]:
    if not isinstance(rows, list):
        raise RecordError(f"{where} must be a list of rows.")
    if len(rows) > MAX_ROWS:
        raise RecordError(f"{where} has {len(rows):,} rows; at most {MAX_ROWS:,} are allowed.")
    kept = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise RecordError(f"{where}, row {i}, is not an object.")
        for name, ok in columns.items():
            if name not in row and getattr(ok, "added", False):
                row = {**row, name: None}
            if name not in row:
                raise RecordError(f"{where}, row {i}, has no column '{name}'.")
            if not ok(row[name]):
                raise RecordError(f"{where}, row {i}: '{name}' = {shorten(json.dumps(row[name]), 30)} is not allowed.")
        kept.append({name: row[name] for name in columns})  # only the columns we know travel on
    return kept


def check_record(r: Any, i: int) -> dict:
    """A checked copy of record `i` (only known fields), or RecordError."""
    where = f"Run {i}"
    if not isinstance(r, dict):
        raise RecordError(f"{where} is not a run record (an object with id, arch, step, history, metrics, diagnostics).")
    for name, ok, allowed in (("id", _text, f"a name of 1 to {MAX_TEXT} characters"),
                              ("arch", lambda v: v in ARCHITECTURES, f"one of {', '.join(ARCHITECTURES)}"),
                              ("status", _text, "a word such as finished or paused"),
                              ("step", COUNT, "a whole number of steps, 0 or more")):
        if not ok(r.get(name)):
            raise RecordError(f"{where}: '{name}' = {shorten(json.dumps(r.get(name)), 30)} is not allowed; it must be {allowed}.")
    where = f"Run {i} ({shorten(r['id'], 30)})"
    if not isinstance(r.get("settings", {}), dict) or not isinstance(r.get("diagnostics"), dict):
        raise RecordError(f"{where}: 'settings' and 'diagnostics' must be objects.")
    try:   # the same typed check as a link or a settings file, before anything sizes a network from them
        settings = check_values(r.get("settings", {}))
    except ValueError as error:
        raise RecordError(f"{where}: its settings are not this app's: {error}") from None
    rates = r.get("positive_rate", [])
    if not isinstance(rates, list) or len(rates) > 64 or not all(_maybe(SHARE)(v) for v in rates):
        raise RecordError(f"{where}: 'positive_rate' must be a list of rates between 0 and 1 (or null for regression tasks).")
    history = _rows(r.get("history"), HISTORY, f"{where}, history")
    metrics = _rows(r.get("metrics"), METRICS, f"{where}, metrics")
    unknown = sorted(set(r["diagnostics"]) - set(DIAGNOSTICS))
    if unknown:
        raise RecordError(f"{where}: unknown diagnostics table(s) {shorten(', '.join(unknown), 40)}; "
                          f"known: {', '.join(DIAGNOSTICS)}.")
    tables = {name: _rows(rows, DIAGNOSTICS[name], f"{where}, diagnostics '{name}'") for name, rows in r["diagnostics"].items()}
    snapshot_steps = {row["step"] for name, rows in tables.items() if name not in EVALUATIONS for row in rows}
    if snapshot_steps:
        missing = [name for name in REQUIRED_DIAGNOSTICS if not tables.get(name)]
        if missing:
            raise RecordError(f"{where}: diagnostics without the table(s) {', '.join(missing)}, which every snapshot has.")
        for name in REQUIRED_DIAGNOSTICS:
            if {row["step"] for row in tables[name]} != snapshot_steps:
                raise RecordError(f"{where}: diagnostics '{name}' does not cover every snapshot step.")
    late = max([row["step"] for rows in [history, *tables.values()] for row in rows] + [0])
    if late > r["step"]:
        raise RecordError(f"{where}: it has data for step {late}, after its last step {r['step']}.")
    weights = r.get("weights")
    if weights is not None and not (isinstance(weights, str) and len(weights) <= MAX_WEIGHTS and BASE64.fullmatch(weights)):
        raise RecordError(f"{where}: 'weights' must be the trained weights as base64 text of at most {MAX_WEIGHTS:,} characters.")
    return thin({"id": r["id"], "arch": r["arch"], "status": r["status"], "step": r["step"], "settings": clean(settings),
                 "history": history, "metrics": metrics, "positive_rate": rates, "diagnostics": tables,
                 **({"weights": weights} if weights is not None else {})})


def _evenly(values: list, most: int) -> list:
    """At most `most` of sorted `values`, evenly spread, the first and last always among them."""
    if len(values) <= most:
        return values
    return [values[round(i * (len(values) - 1) / (most - 1))] for i in range(most)]


def thin(record: dict, snapshots: int = MAX_SNAPSHOTS, points: int = MAX_POINTS) -> dict:
    """A record cut to what the pages draw: at most `snapshots` snapshot steps (the timeline's stops) and
    `points` points per loss curve (arch, task, split), evenly spread, the last always kept."""
    steps = sorted({row["step"] for rows in record["diagnostics"].values() for row in rows})
    kept = set(_evenly(steps, snapshots))
    curves: dict[tuple, list[int]] = {}
    for row in record["history"]:
        curves.setdefault((row["arch"], row["task"], row["split"]), []).append(row["step"])
    shown = {key: set(_evenly(sorted(set(s)), points)) for key, s in curves.items()}
    return {**record, "history": [row for row in record["history"] if row["step"] in shown[row["arch"], row["task"], row["split"]]],
            "diagnostics": {name: [row for row in rows if row["step"] in kept] for name, rows in record["diagnostics"].items()}}


def read_records(text: str | bytes) -> list[dict]:
    """Checked records from an uploaded file (one record or a list); RecordError/ValueError otherwise."""
    data = load_json(text, MAX_FILE, "run")
    records = data if isinstance(data, list) else [data]
    if not records:
        raise RecordError("The file holds no runs.")
    if len(records) > MAX_RECORDS:
        raise RecordError(f"The file holds {len(records)} runs; at most {MAX_RECORDS} can be loaded at once.")
    return [check_record(r, i) for i, r in enumerate(records)]


def free_id(wanted: str, taken: set[str]) -> str:
    """`wanted`, or when it is taken the first free "wanted (2)", "wanted (3)", ... (within MAX_TEXT characters)."""
    rid, n = wanted, 2
    while rid in taken:
        rid = f"{wanted[:MAX_TEXT - 6]} ({n})"
        n += 1
    return rid
