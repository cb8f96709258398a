"""Each browser's kept runs: its locker in the server's durable store, found again by a random token the
browser keeps in a cookie; run files loaded into it; a finished run's model to download."""

from __future__ import annotations

import json
import re
import secrets
import threading

import streamlit as st

from mtl_core.config import ConfigError
from mtl_core.data import table
from mtl_core.data.table import Table
from mtl_core.models.registry import label
from mtl_core.serve.exported import has_model, model_zip
from mtl_core.serve.records import MAX_FILE, read_records
from mtl_core.serve.shelf import Locker, Shelf
from mtl_core.serve.store import default_location, Store, StoreFull
from pages.echo import code

_SHELF: list[Shelf] = []
_SHELF_LOCK = threading.Lock()


def shelf() -> Shelf:
    """Every browser's locker, over the server's store, opened on first use. A store that cannot be opened
    (a PostgreSQL server down) raises StoreUnavailable, which app.py shows on the page; the next page tries again."""
    with _SHELF_LOCK:
        if not _SHELF:
            _SHELF.append(Shelf(Store(default_location())))
        return _SHELF[0]


TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")


def browser_token() -> str:
    """A random token per browser, kept in a cookie (so a reload finds the runs again); a new browser gets
    one for this session (`remember_browser` asks it to keep it)."""
    token = st.context.cookies.get("mtl_browser")
    if isinstance(token, str) and TOKEN.fullmatch(token):
        return token
    return st.session_state.setdefault("browser_token", secrets.token_urlsafe(18))


def remember_browser() -> None:
    """Ask the browser to keep its token, on every full run of a session that arrived without the cookie.
    Sent once, the script could be replaced by a quick rerun before the browser ran it; a later reconnect
    (a new session) would then open an empty locker: the end-to-end test saw 'No runs yet' once in nine runs."""
    token = st.context.cookies.get("mtl_browser")
    if not (isinstance(token, str) and TOKEN.fullmatch(token)):
        st.html(f"<script>document.cookie='mtl_browser={browser_token()}; path=/; max-age=2592000; samesite=strict';</script>",
                unsafe_allow_javascript=True)


def locker() -> Locker:
    """This browser's kept runs (and its live race)."""
    return shelf().locker(browser_token())


def keep(records: list[dict], update: bool = False) -> list[dict]:
    """Keep records for this browser; a record whose id is taken gets a new id, or with `update` (a live
    run archived again) replaces it. Returns them as kept."""
    return shelf().keep(browser_token(), records, update)


def load_runs(upload) -> None:
    """Check an uploaded run file whole and keep its runs, or say why not (nothing changes then)."""
    try:
        if upload.size > MAX_FILE:
            raise ValueError(f"The file is {upload.size:,} bytes; run files are at most {MAX_FILE:,} bytes.")
        records = read_records(upload.getvalue())
        added = keep(records)
    except (ValueError, StoreFull) as error:
        st.error(f"Could not load {code(upload.name)}: {code(error, 300)} Nothing in your session was changed.")
        return
    renamed = [r["id"] for r, a in zip(records, added) if r["id"] != a["id"]]
    st.success(f"Loaded {len(added)} run(s) from {code(upload.name)}."
               + (f" {len(renamed)} had the name of a run you already have and got a new one." if renamed else ""))


def own_file() -> Table | None:
    """This browser's own data file, checked and held in this process (data/table.py); None when it has kept none. The
    store is read (and the file checked again) only when this process does not hold it."""
    digest = st.session_state.get("own_file")
    held = table.holding(digest) if digest else None
    if held is not None:
        return held
    kept = locker().file()
    if kept is None:
        return None
    held = table.register(kept[1], kept[0])
    st.session_state.own_file = held.digest
    return held


def keep_own_file(upload) -> Table | None:
    """Check an uploaded data file whole, keep it in this browser's locker (in place of the one before) and hold it;
    or say why not (nothing changes then)."""
    try:
        raw = upload.getvalue()
        held = table.register(raw, upload.name)
        locker().keep_file(upload.name, raw)
    except ConfigError as error:
        st.error(f"Could not use {code(upload.name)}: {code(error, 400)} Nothing was changed.")
        return None
    st.session_state.own_file = held.digest
    return held


@st.cache_data(max_entries=32, show_spinner=False)
def _model_zip(arch: str, settings: str, weights: str, metrics: str) -> bytes:
    return model_zip({"arch": arch, "settings": json.loads(settings), "weights": weights, "metrics": json.loads(metrics)})


def model_download(record: dict, where=st) -> None:
    """A finished run's model as plain PyTorch (a zip: model.py, weights.safetensors, preprocessing.json, README.md),
    or a caption saying why there is none."""
    if not has_model(record):
        where.caption("Only a run that finished in this app carries its trained model, to download as plain PyTorch.")
        return
    try:
        if record["settings"].get("source") == "file":   # its preprocessing is read from the file: this browser's own only
            mine = own_file()
            if mine is None or mine.digest != record["settings"].get("file"):
                where.caption("This run trained on a file this browser no longer holds: upload it again on the Data page "
                              "to download the model with its preprocessing.")
                return
        data = _model_zip(record["arch"], json.dumps(record["settings"], sort_keys=True), record["weights"],
                          json.dumps(record["metrics"]))
    except (ValueError, ConfigError) as error:
        where.caption(f"This run's model cannot be exported: {code(error, 200)}")
        return
    where.download_button(f"Download {label(record['arch'])} as plain PyTorch (zip)", data,
                          f"mtl-playground-{record['arch']}.zip", "application/zip", icon=":material/download:",
                          key=f"model {record['id']}", help="model.py (no MTL Playground needed), weights.safetensors, "
                          "preprocessing.json and a README with the settings and test metrics")
