"""What a component's recipe section accepts: each option's key, type, default and the
description its config class's docstring gives (``Attributes:`` section, Google style).

Used by ``cpcframe plugins NAME``; nested config classes (``[probe.mlp]``) are listed
with dotted keys.
"""

from __future__ import annotations

import inspect
import re
import typing
from typing import Any

import attrs

from cpcframe.config.structure import GATHERS_TABLES

_ENTRY = re.compile(r"^(\s*)([A-Za-z_][\w, ]*):\s*(.*)$")


def attribute_docs(cls: type) -> dict[str, str]:
    """``{field: description}`` from the ``Attributes:`` section of ``cls``'s docstring.

    An entry may name several fields (``betas, eps, weight_decay: AdamW's.``) and continue
    on more-indented lines; descriptions are joined into one line.
    """
    doc = inspect.getdoc(cls) or ""
    lines = doc.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Attributes:") + 1
    except StopIteration:
        return {}
    docs: dict[str, str] = {}
    names: list[str] = []
    indent = None
    for line in lines[start:]:
        if not line.strip():
            continue
        match = _ENTRY.match(line)
        level = len(line) - len(line.lstrip())
        if indent is None:
            indent = level
        if level < indent:
            break  # the section ended
        if match and level == indent:
            names = [n.strip() for n in match.group(2).split(",")]
            for name in names:
                docs[name] = match.group(3).strip()
        elif names:
            for name in names:
                docs[name] = f"{docs[name]} {line.strip()}".strip()
    return docs


def _type_name(tp: Any) -> str:
    if isinstance(tp, str):
        return tp
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin is not None:  # list[float], tuple[int, ...], Optional[...]
        return str(tp).replace("typing.", "")
    return getattr(tp, "__name__", None) or str(tp)


#: The default of an option a recipe must give.
REQUIRED = object()


def _default(field: attrs.Attribute) -> Any:
    default = field.default
    if default is attrs.NOTHING:
        return REQUIRED
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        return default.factory() if not default.takes_self else "(computed)"
    return default


def describe_options(cls: type | None, prefix: str = "") -> list[dict[str, Any]]:
    """One ``{"key", "type", "default", "description"}`` per option of config class ``cls``
    (``default`` is :data:`REQUIRED` for options without one)."""
    if cls is None:
        return []
    hints = typing.get_type_hints(cls)
    docs: dict[str, str] = {}
    for base in reversed(cls.__mro__):  # a subclass's description wins over its base's
        docs.update(attribute_docs(base) if base is not object else {})
    rows: list[dict[str, Any]] = []
    for field in attrs.fields(cls):
        if field.metadata.get(GATHERS_TABLES):  # other components' tables: each lists its own
            continue
        key = f"{prefix}{field.name}"
        tp = hints.get(field.name, field.type)
        if attrs.has(tp):
            rows += describe_options(tp, prefix=f"{key}.")
            continue
        rows.append({"key": key, "type": _type_name(tp), "default": _default(field),
                     "description": docs.get(field.name, "")})
    return rows
