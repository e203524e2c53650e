"""Reading TOML (tomllib) and writing the small subset recipes need."""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Mapping
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

TOMLDecodeError = tomllib.TOMLDecodeError
loads = tomllib.loads

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key)


def toml_value(value: Any) -> str:
    """``value`` (scalar, array or inline table) as TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def dumps(data: Mapping[str, Any], header: str = "") -> str:
    """TOML text for nested mappings of scalars and arrays (tables become ``[a.b]`` sections)."""
    lines: list[str] = [f"# {line}" if line else "#" for line in header.splitlines()]

    def section(table: Mapping[str, Any], prefix: str) -> None:
        scalars = {k: v for k, v in table.items() if not isinstance(v, Mapping) and v is not None}
        tables = {k: v for k, v in table.items() if isinstance(v, Mapping)}
        if prefix and (scalars or not tables):
            lines.append("")
            lines.append(f"[{prefix}]")
        for k, v in scalars.items():
            lines.append(f"{_key(k)} = {toml_value(v)}")
        for k, v in tables.items():
            section(v, f"{prefix}.{_key(k)}" if prefix else _key(k))

    section(data, "")
    return "\n".join(lines).lstrip("\n") + "\n"
