"""A JSON file a user gave (a settings file, a run file): read with limits first, so no file can make the
server parse without bound or answer in Python's words.

    data = load_json(upload.getvalue(), MAX_FILE, "run")   # ValueError with a message for the student
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 16               # JSON nesting; our files go 5 deep
MAX_DIGITS = 30              # digits of a whole number in a file (the largest knob value has 7)


def load_json(text: str | bytes, max_bytes: int, what: str) -> Any:
    """Parse a JSON file a user gave: size and nesting limits first, strict numbers (no NaN or
    Infinity); ValueError with a message for the student otherwise."""
    if len(text) > max_bytes:
        raise ValueError(f"The file is {len(text):,} bytes; {what} files are at most {max_bytes:,} bytes.")
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    depth = _nesting(text)
    if depth > MAX_DEPTH:
        raise ValueError(f"The file nests {depth} levels deep; {what} files nest at most {MAX_DEPTH}.")

    def refuse(constant: str):
        raise ValueError(f"The file contains {constant}, which is not a number; {what} files have finite numbers only.")

    def integer(digits: str) -> int:   # before Python's own limit (4,300 digits) answers in its own words
        if len(digits) > MAX_DIGITS:
            raise ValueError(f"The file contains a whole number of {len(digits):,} digits; {what} files have numbers of at most "
                             f"{MAX_DIGITS} digits.")
        return int(digits)
    try:
        return json.loads(text, parse_constant=refuse, parse_int=integer)
    except json.JSONDecodeError as error:
        raise ValueError(f"The file is not valid JSON ({error.msg} at line {error.lineno}).") from None


def _nesting(text: str) -> int:
    """Deepest bracket nesting of a JSON text, outside strings (counted before parsing, so a file
    nested 10,000 deep is refused without recursion)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            escaped, in_string = (False, True) if escaped else (char == "\\", char != '"')
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest
