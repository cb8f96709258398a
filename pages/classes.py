"""The class this browser is in, over the server's store: its classes, the links a teacher shares, the address a
join comes from, the teacher's key kept in a cookie, and a finished lesson's result sent to the class."""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import threading
from urllib.parse import urlencode, urlsplit

import streamlit as st

from mtl_core.serve.classes import ClassError, Classes
from mtl_core.studies import lessons
from pages.kept import browser_token, shelf

_CLASSES: list[Classes] = []
_LOCK = threading.Lock()
TEACHER_COOKIE = "mtl_teacher"
TEACHER_VALUE = re.compile(r"([A-Z0-9]{6})\.([A-Za-z0-9_-]{32})")


def classes() -> Classes:
    """The server's classes, in the store that keeps every browser's runs."""
    with _LOCK:
        if not _CLASSES:
            _CLASSES.append(Classes(shelf().store))
        return _CLASSES[0]


def address() -> str:
    """Where a join comes from, for its rate limit: the browser's address, or, behind the class server's proxy on this
    machine (classroom.py's nginx), the address the proxy saw."""
    seen = st.context.ip_address if isinstance(st.context.ip_address, str) else ""
    try:
        local = ipaddress.ip_address(seen).is_loopback
    except ValueError:
        local = True
    forwarded = st.context.headers.get("X-Real-IP")
    return (forwarded if isinstance(forwarded, str) and forwarded else seen) if local else seen


def base_url() -> str:
    """This server as the browser reached it (scheme, host and port); a teacher on the server itself (localhost) gets
    the machine's address on the network instead, which the students' browsers can reach."""
    url = st.context.url
    parts = urlsplit(url if isinstance(url, str) and url else "http://localhost:8501/")
    if parts.hostname in ("localhost", "127.0.0.1", "::1"):
        return f"{parts.scheme}://{network_address()}" + (f":{parts.port}" if parts.port else "")
    return f"{parts.scheme}://{parts.netloc}"


def network_address() -> str:
    """This machine's address on its network (the one its default route uses; nothing is sent), or 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.254.254.254", 1))
            return probe.getsockname()[0]
        except OSError:
            return "127.0.0.1"


def join_link(code: str) -> str:
    return f"{base_url()}/class?{urlencode({'join': code})}"


def teacher_link(code: str, key: str) -> str:
    return f"{base_url()}/class?{urlencode({'code': code, 'key': key})}"


def remember_teacher(code: str, key: str, keep: bool = True) -> None:
    """Ask the browser to keep (or forget) the teacher's key of a class, so a reload reopens the dashboard. Behind
    `serve`'s proxy a browser with the key belongs to the teachers' own process (serve/classroom.py): a browser that
    keeps it elsewhere reloads once to get there."""
    value, age = (f"{code}.{key}", 12 * 3600) if keep else ("", 0)
    if keep and not TEACHER_VALUE.fullmatch(value):   # a link's code and key go into a script: only their own alphabet
        return
    move = keep and os.environ.get("MTL_TEACHERS_APART") == "1" and os.environ.get("MTL_TEACHER_PROCESS") != "1"
    reload = (f"if (sessionStorage.getItem('mtl_teacher_moved') !== '{code}') {{ sessionStorage.setItem('mtl_teacher_moved', "
              f"'{code}'); window.top.location.reload(); }}") if move else ""
    st.html(f"<script>document.cookie='{TEACHER_COOKIE}={value}; path=/; max-age={age}; samesite=strict';{reload}</script>",
            unsafe_allow_javascript=True)


def teacher_cookie() -> tuple[str, str] | None:
    value = st.context.cookies.get(TEACHER_COOKIE)
    found = TEACHER_VALUE.fullmatch(value) if isinstance(value, str) else None
    return (found[1], found[2]) if found else None


def send_result(lesson: lessons.Lesson, verdict, outcome, seed: int) -> None:
    """A finished lesson's result, to the class this browser is in, when it is that class's lesson on this student's
    seed (once per result)."""
    member = classes().member(browser_token())
    if member is None or member.lesson != lesson.key or member.seed != seed:
        return
    result = {"held": verdict.held, "evidence": verdict.evidence, "seed": seed, "losses": lessons.model_losses(outcome)}
    sent = (member.code, repr(result))
    if st.session_state.get("class_sent") == sent:
        return
    try:
        classes().submit(member.code, browser_token(), result)
        st.session_state.class_sent = sent
        st.toast(f"Your result went to class {member.code}.", icon=":material/send:")
    except ClassError as error:
        st.warning(f"Your result could not go to the class: {error}")


