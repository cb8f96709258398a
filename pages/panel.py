"""The knob panel, bound to the URL, and settings files.

The knobs come from one table (`mtl_core.settings.knobs`). The student's settings live in
`st.session_state["settings"]`; widgets are drawn from them and write back to them. The URL mirrors
the settings so a teacher can share it; a link is read once, when a session starts or a lesson opens,
and every value in it is checked (and a bad one dropped with a notice) before any widget sees it.
"""

from __future__ import annotations

from typing import Sequence

import streamlit as st

from mtl_core.serve.records import dumps
from mtl_core.settings import knobs, links, rules
from mtl_core.settings.knob import Knob, Settings
from mtl_core.settings.knobs import APP_KNOBS, KNOBS
from pages.echo import code, show_notices
from pages.kept import locker

def settings() -> Settings:
    """The student's settings (every knob), created with the defaults."""
    return st.session_state.setdefault("settings", knobs.defaults())


def open_link(page: str, query: dict[str, list[str]], lesson: str | None = None) -> None:
    """Switch to `page` with a link's settings (a lesson): the link is read as on a fresh start."""
    st.session_state.follow_link = True
    st.session_state.lesson = lesson
    st.switch_page(page, query_params=query)


def _widget_changed(name: str) -> None:
    value = st.session_state[f"knob.{name}"]
    s = settings()
    s.update(knobs.with_preset(s, value) if name == "preset" else {name: tuple(value) if KNOBS[name].multi else value})


def _draw(knob: Knob, s: Settings, disabled: bool, where) -> None:
    key = f"knob.{knob.name}"
    value = list(s[knob.name]) if knob.multi else s[knob.name]
    options = knob.options
    if knob.name in ("dense", "sparse"):  # task numbers that exist (sparse: not already dense)
        options = tuple(k for k in range(s["tasks"]) if knob.name == "dense" or k not in s["dense"])
    # Always set, even to the value it has: the same key on another page is another widget to the browser, which
    # would otherwise draw it at its first option or minimum (seen: Data -> Playground showed tasks 1, p = -1).
    st.session_state[key] = value
    label = knob.label + (" (live)" if knob.live else "")
    kw = dict(key=key, help=knob.help or None, disabled=disabled, on_change=_widget_changed, args=(knob.name,))
    if knob.widget == "toggle":
        where.toggle(label, **kw)
    elif knob.widget == "number":
        where.number_input(label, min_value=int(knob.low), max_value=int(knob.high), step=1, **kw)
    elif knob.widget == "slider":
        where.slider(label, min_value=knob.low, max_value=knob.high, step=knob.step, **kw)
    elif knob.widget == "select_slider":
        where.select_slider(label, options=options, **kw)
    elif knob.widget == "selectbox":
        where.selectbox(label, options=options, **kw)
    else:
        where.multiselect(label, options=options, **kw)


def knob_panel(page: str, groups: dict[str, Sequence[str]], where=st.sidebar, implied: Settings | None = None) -> Settings:
    """Draw this page's knobs under their headers (`groups`: header -> knob names) and return the
    settings. `implied` are settings the page fixes (HoME on the ablation page) for deciding which knobs
    apply. The link is read when a session starts or a lesson opens; afterwards the URL only follows."""
    fresh = "settings" not in st.session_state
    s = settings()
    implied = implied or {}
    allowed = [name for names in groups.values() for name in names]
    if fresh:  # a reload (or a second tab) starts from this browser's last settings
        s.update(locker().settings)
    if fresh or st.session_state.pop("follow_link", False):
        merged, hidden, notices = links.follow_link(s, {k: st.query_params.get_all(k) for k in st.query_params}, allowed, implied)
        s.update(merged)
        st.session_state.hidden = (page, hidden)
        show_notices(notices, "The link")
    merged, dropped = rules.apply(s, {}, explicit=False)  # the rules between knobs, after any widget change
    s.update(merged)
    show_notices(dropped, "Your settings")
    locked_page, locked = st.session_state.get("hidden", (None, ()))
    locked = locked if locked_page == page else ()
    for header, names in groups.items():
        if header:
            where.header(header)
        for name in names:
            if KNOBS[name].widget and KNOBS[name].applies({**s, **implied}):   # an own file's knobs: the Data page draws them
                _draw(KNOBS[name], s, name in locked, where)
    link = links.to_link({**s, **implied}, allowed) | ({links.HIDE: [",".join(locked)]} if locked else {})
    if link != {k: st.query_params.get_all(k) for k in st.query_params}:
        st.query_params.from_dict(link)
    locker().settings = dict(s)
    return s


def settings_file(where=st.sidebar) -> None:
    """Download the settings as JSON, and load such a file: checked whole, so a bad file changes nothing."""
    s = settings()
    where.download_button("Download settings (JSON)", dumps({name: s[name] for name in APP_KNOBS}), "mtl-playground-settings.json",
                          mime="application/json")
    upload = where.file_uploader("Load settings (JSON)", type=["json"], key="settings_upload")
    if upload is None or st.session_state.get("loaded_settings") == upload.file_id:
        return
    st.session_state.loaded_settings = upload.file_id
    try:
        if upload.size > links.MAX_SETTINGS_FILE:
            raise ValueError(f"The file is {upload.size:,} bytes; settings files are at most {links.MAX_SETTINGS_FILE:,} bytes.")
        merged, dropped = rules.apply(s, links.read_file(upload.getvalue()))
        if dropped:
            raise ValueError("; ".join(n.text() for n in dropped) + ".")
    except ValueError as error:
        where.error(f"Could not load {code(upload.name)}: {code(error, 600)} Your settings were kept.")
        return
    s.update(merged)
    st.rerun()
