"""A user's text on a page, echoed as code and never as Markdown, links, images or HTML; a notice per value
that was not used."""

from __future__ import annotations

import re
from typing import Any, Sequence

import streamlit as st

from mtl_core.settings.knob import SHOWN, Notice, shorten

def code(text: Any, limit: int = SHOWN) -> str:
    """A user's text as inline code: shortened to one line, shown literally (no Markdown, links, images or HTML)."""
    flat = shorten(str(text), limit).replace("\n", " ")
    fence = "`" * (max((len(run) for run in re.findall(r"`+", flat)), default=0) + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") or not flat else ""
    return f"{fence}{pad}{flat}{pad}{fence}"


def show_notices(notices: Sequence[Notice], source: str, where=st) -> None:
    for n in notices:
        where.warning(f"{source} sets {code(n.knob)} to {code(n.value)}, which was not used: {n.problem}.",
                      icon=":material/warning:")
