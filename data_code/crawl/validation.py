"""Field checks shared by the crawl's frozen config dataclasses; every ValueError starts with the field's name."""

from __future__ import annotations

import dataclasses
import math
import typing

# A header value may hold tab and printable ASCII only: CR/LF would split the request, NUL truncates it in some
# servers, and httpx encodes header values as ASCII.
_HEADER_SAFE = {9, *range(32, 127)}


def check_field_types(config: object) -> None:
    """Every `float` field of the dataclass `config` must be a finite number, every `int` field an integer.

    bool counts as neither, an int is a fine float, and NaN or infinity never is: a NaN passes every `<` test,
    so it would slip through range checks (max_pages=nan would crawl forever).
    """
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if hints[field.name] is float:
            check_finite(field.name, value)
        elif hints[field.name] is int:
            check_integer(field.name, value)


def check_finite(name: str, value: object) -> None:
    """Raise ValueError naming `name` unless `value` is a finite int or float."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name}: must be a number, got {value!r:.40}")
    if not math.isfinite(value):
        raise ValueError(f"{name}: must be a finite number, got {value!r}")


def check_integer(name: str, value: object) -> None:
    """Raise ValueError naming `name` unless `value` is an int (not a bool, not a float such as nan or 3.0)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name}: must be an integer, got {value!r:.40}")


def check_header_value(name: str, value: object) -> None:
    """Raise ValueError naming `name` unless `value` can be sent as an HTTP header value as it is."""
    if not isinstance(value, str):
        raise ValueError(f"{name}: must be a string, got {type(value).__name__}")
    for position, character in enumerate(value):
        if ord(character) not in _HEADER_SAFE:
            problem = "a control character (CR, LF, NUL...)" if ord(character) < 128 else "a non-ASCII character"
            raise ValueError(f"{name}: must not contain {problem}, found {character!r} at position {position}")
