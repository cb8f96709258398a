"""The Data page with data = file: upload a CSV or Parquet file, choose its labels and inputs, and see the tasks
they make (rows, measured label correlation, positive rates, one label against another)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from mtl_core.config import ConfigError
from mtl_core.data import table
from mtl_core.settings import builders
from mtl_core.settings.knob import Settings
from mtl_core.view import charts
from pages import DATA
from pages.echo import code
from pages.kept import keep_own_file, locker, own_file
from pages.panel import settings

EXAMPLE = DATA / "example_tasks.csv"
NONE = "(none)"
LIMITS = (f"A file may have at most {table.MAX_BYTES / 1e6:.0f} MB, {table.MAX_ROWS:,} rows, {table.MAX_COLUMNS} columns, "
          f"{table.MAX_CELLS:,} cells and {table.MAX_LINE:,} characters on a line; a CSV file is UTF-8 text with the column names "
          f"in its first row. Text columns are one-hot encoded (at most {table.MAX_LEVELS} values each); text cells that "
          "start with = + - or @ read as spreadsheet formulas and refuse the file.")


def _chosen(name: str) -> None:
    """A choice changed: write it into the settings (before the page runs again)."""
    value = st.session_state[f"own.{name}"]
    s = settings()
    if name == "labels":
        s["labels"] = tuple(value)
        s["label_types"] = ()
    elif name == "inputs":
        s["inputs"] = tuple(value) if set(value) != set(st.session_state.get("own.all_inputs", ())) else ()
    elif name == "user_column":
        s["user_column"] = "" if value == NONE else value
        s["inputs"] = tuple(c for c in s["inputs"] if c != s["user_column"])
    elif name.startswith("label_types."):   # one label's type
        labels, types = s["labels"], list(s["label_types"] or own_file().detected(s["labels"]))
        types[labels.index(name.split(".", 1)[1])] = value
        s["label_types"] = tuple(types)
    else:
        s[name] = value


def _widget(name: str, value) -> dict:
    """The keyword arguments of a choice's widget, showing `value` (set each run: the settings are the truth)."""
    st.session_state[f"own.{name}"] = value
    return dict(key=f"own.{name}", on_change=_chosen, args=(name,))


def _fit(s: Settings, held: table.Table) -> None:
    """Make the settings name this file, keeping only choices of columns it has."""
    columns = set(held.frame.columns)
    if s["file"] != held.digest or not set(s["labels"]) <= columns:
        s.update(labels=tuple(c for c in s["labels"] if c in columns), label_types=())
    s.update(file=held.digest, inputs=tuple(c for c in s["inputs"] if c in columns),
             user_column=s["user_column"] if s["user_column"] in columns else "")


def own_data(s: Settings) -> None:
    st.subheader("Your own tasks")
    st.write("Upload a file with one row per example and two or more label columns: each label becomes a task, and every "
             "architecture of the Playground can race on them. The file stays in your browser's locker on this server: no "
             "other student sees it, and links and run files never carry it.")
    st.caption(LIMITS)
    upload = st.file_uploader("Your file (CSV or Parquet)", type=["csv", "parquet"], key="own_upload")
    if upload is not None and st.session_state.get("own_upload_id") != upload.file_id:
        st.session_state.own_upload_id = upload.file_id
        keep_own_file(upload)   # the choices of columns it has too are kept (_fit)
    try:
        current = own_file()
    except ConfigError as error:   # a file kept under older limits
        st.error(f"Your kept file cannot be used: {code(error, 300)} Upload another.")
        return
    st.download_button("Download an example file (census income, 4,000 rows)", EXAMPLE.read_bytes(), EXAMPLE.name,
                       mime="text/csv", icon=":material/download:",
                       help="Made from the census-income rows this app ships: three labels (income over $50K, never "
                            "married, weeks worked) and ten columns to predict them from. Upload it above.")
    if current is None:
        st.info("No file yet: upload one above (or the example).")
        return
    held = current
    if s["file"] and s["file"] != held.digest:
        st.warning("These settings named a file this browser does not have (a link never carries a file); they now use "
                   f"your file {code(held.name)}.")
    _fit(s, held)
    columns = held.columns()
    st.write(f"**{code(held.name)}**: {len(held.frame):,} rows, {len(columns)} columns.")
    st.dataframe(columns, hide_index=True, height=min(35 * (len(columns) + 1) + 3, 300))

    candidates = columns.column[columns.can_be != "input only"].tolist()
    st.multiselect(f"Label columns: one task each (2 to {table.MAX_LABELS})", candidates, max_selections=table.MAX_LABELS,
                   **_widget("labels", [c for c in s["labels"] if c in candidates]),
                   help="A label is a number (regression) or a column of exactly two values (binary).")
    labels = s["labels"]
    if labels:
        types = s["label_types"] or held.detected(labels)
        for column, kind, where in zip(labels, types, st.columns(len(labels))):
            allowed = ("binary", "regression") if columns.set_index("column").kind[column] == "number" else ("binary",)
            allowed = tuple(t for t in allowed if t != "binary" or held.frame[column].nunique() == 2)
            where.selectbox(f"{code(column)}: task type", allowed, **_widget(f"label_types.{column}", kind if kind in allowed else allowed[0]))
    others = [c for c in columns.column if c not in labels]
    user_options = [NONE, *others]
    st.selectbox("User column (for GAUC: AUC per user, averaged)", user_options,
                 **_widget("user_column", s["user_column"] or NONE))
    all_inputs = [c for c in others if c != s["user_column"]]
    st.session_state["own.all_inputs"] = all_inputs
    st.multiselect("Input columns (what the model reads)", all_inputs, **_widget("inputs", list(s["inputs"]) or all_inputs))
    st.radio("Rows with a missing value in a chosen column", table.MISSING, horizontal=True,
             format_func={"drop": "drop them", "refuse": "refuse the file"}.get, **_widget("missing", s["missing"]))
    locker().settings = dict(s)

    if len(labels) < 2:
        st.info("Choose two or more label columns to see the tasks they make.")
        return
    try:
        data = builders.data_config(s)
        dataset = table.labels(data)   # no input matrix in the page process
        rows = table.encoding(data)["rows"]
    except ConfigError as error:
        st.error(f"These choices do not make a task set: {code(error, 400)}")
        return
    dropped = rows["dropped for a missing value"]
    st.write(f"**{rows['used']:,} rows** used ({len(dataset.train.y):,} train, {len(dataset.validation.y):,} validation, "
             f"{len(dataset.test.y):,} test: a fixed shuffle)"
             + (f"; **{dropped:,} rows dropped** for a missing value." if dropped else ".")
             + f" The model reads {data.features} inputs.")
    left, right = st.columns(2)
    left.altair_chart(charts.matrix_chart(dataset.label_correlation, "measured label correlation (training rows)", list(labels)))
    rates = [f"- {code(n)}: {r:.1%} positive" for n, r in zip(labels, dataset.positive_rate) if not np.isnan(r)]
    right.write("\n".join(rates) if rates else "Every label is a regression label (standardised: mean 0, std 1).")
    right.caption("Pearson correlation of the labels as the model sees them (binary labels as 0/1, the others standardised).")
    st.subheader(f"{code(labels[0])} against {code(labels[1])}")
    shown = np.random.default_rng(0).choice(len(dataset.train.y), size=min(1500, len(dataset.train.y)), replace=False)
    points = pd.DataFrame(dataset.train.y[shown][:, :2], columns=["y0", "y1"])
    st.altair_chart(charts.scatter_chart(points, "y0", "y1"))
    st.caption(f"{len(shown):,} training rows (x: {code(labels[0])}, y: {code(labels[1])}). A tight diagonal means the tasks agree; "
               "a binary label shows as two stripes.")
    st.page_link("pages/playground.py", label="Race the architectures on these tasks in the Playground", icon=":material/play_circle:")
