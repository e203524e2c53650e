"""Turn plain data (parsed TOML) into frozen attrs instances, collecting every problem.

Like cattrs' ``structure`` but never stops at the first error: each problem is recorded
with its key path (``model.encoder.strides[2]``) and unknown keys get suggestions.
Supported field types: ``int``, ``float`` (ints accepted), ``bool``, ``str``, ``Literal``,
``Optional``/``X | None``, ``list[T]``, ``tuple[T, ...]``, ``tuple[A, B]``, ``dict[str, T]``,
nested attrs classes, and ``Any``.

Three field metadata keys keep recipes readable as options evolve (set them with the
helpers :func:`renamed_from`, :func:`registered` and :func:`gathers_tables`):

* a renamed option accepts its old keys, with a ``DeprecationWarning`` naming the new one
  (saved ``recipe.toml`` files of earlier releases keep loading);
* an option that names registered components (``classifiers = ["linear", "knn"]``) is
  checked against the registry, with close matches for typos;
* one ``dict`` field of a class may gather the class's other keys whose values are tables
  (``[probe.knn]`` beside the fixed options); its type's ``__cpcframe_structure__`` hook
  structures them, and :func:`unstructure` writes them back in place.

A class may also name retired options in ``__cpcframe_retired__`` (``{key: why}``): they
are accepted and ignored, with a ``DeprecationWarning``.
"""

from __future__ import annotations

import types
import typing
import warnings
from collections.abc import Mapping
from typing import Any, Literal, Union

import attrs

from cpcframe.errors import Problem, UnknownComponentError, did_you_mean

_MISSING = object()

RENAMED_FROM = "cpcframe.renamed_from"
REGISTERED = "cpcframe.registered"
GATHERS_TABLES = "cpcframe.gathers_tables"


def renamed_from(*old_keys: str) -> dict[str, Any]:
    """Field metadata: the option was called ``old_keys`` before (``renamed_from("max_iter")``)."""
    return {RENAMED_FROM: old_keys}


def registered(kind: str) -> dict[str, Any]:
    """Field metadata: the option's value (a name or a sequence of names) must name
    registered components of ``kind`` (checked when the structurer has a registry)."""
    return {REGISTERED: kind}


def gathers_tables() -> dict[str, Any]:
    """Field metadata: this ``dict`` field takes the class's other keys whose values are tables."""
    return {GATHERS_TABLES: True}


class Structurer:
    """Structures values and collects :class:`Problem`s."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def problem(self, path: str, message: str) -> object:
        self.problems.append(Problem(path, message))
        return _MISSING

    # ---- entry points ------------------------------------------------------------
    def structure_class(self, cls: type, data: Any, path: str) -> Any:
        """An instance of attrs class ``cls`` from mapping ``data``, or ``_MISSING``."""
        if not isinstance(data, Mapping):
            return self.problem(path, f"expected a table, got {_describe(data)}")
        before = len(self.problems)
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in attrs.fields(cls) if f.init}
        gather = next((f for f in fields.values() if f.metadata.get(GATHERS_TABLES)), None)
        if gather is not None:
            del fields[gather.name]
        data = self._upgrade(cls, fields, data, path)
        unknown = [k for k in data if k not in fields]
        tables = {k: data[k] for k in unknown if gather is not None and isinstance(data[k], Mapping)}
        unknown = [k for k in unknown if k not in tables]
        for key in unknown:
            self.problem(_join(path, key), "unknown key" + did_you_mean(key, fields))
        values: dict[str, Any] = {}
        failed = False
        if gather is not None:
            gathered = self.structure_value(hints.get(gather.name, Any), tables, path, gather)
            failed = gathered is _MISSING
            values[gather.name] = gathered
        for name, field in fields.items():
            sub = _join(path, name)
            if name not in data:
                if field.default is attrs.NOTHING:
                    self.problem(sub, "missing required key")
                    failed = True
                continue
            value = self.structure_value(hints.get(name, Any), data[name], sub, field)
            if value is _MISSING:
                failed = True
                continue
            if field.validator is not None and not self._validate(field, value, sub):
                failed = True
                continue
            if REGISTERED in field.metadata and not self._registered(field.metadata[REGISTERED], value, sub):
                failed = True
                continue
            values[name] = value
        if failed or len(self.problems) > before:
            return _MISSING
        try:
            with attrs.validators.disabled():  # already run field by field above
                return cls(**values)
        except (ValueError, TypeError) as exc:  # cross-field checks in __attrs_post_init__
            return self.problem(path, str(exc))

    def structure_value(self, tp: Any, value: Any, path: str, field: Any = None) -> Any:
        hook = getattr(tp, "__cpcframe_structure__", None)
        if hook is not None:
            return hook(self, value, path, field)
        if tp is Any or tp is object:
            return value
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin in (Union, types.UnionType):
            return self._union(args, value, path, field)
        if origin is Literal:
            if value in args and type(value) is type(args[args.index(value)]):
                return value
            hint = did_you_mean(value, [str(a) for a in args]) if isinstance(value, str) else ""
            choices = ", ".join(repr(a) for a in args)
            return self.problem(path, f"must be one of {choices}, got {value!r}{hint}")
        if attrs.has(tp):
            return self.structure_class(tp, value, path)
        if origin in (list, tuple) or tp in (list, tuple):
            return self._sequence(tp, origin or tp, args, value, path)
        if origin in (dict, Mapping) or tp in (dict,):
            return self._mapping(args, value, path)
        if tp is bool:
            if isinstance(value, bool):
                return value
            return self.problem(path, f"expected true or false, got {_describe(value)}")
        if tp is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            return self.problem(path, f"expected an integer, got {_describe(value)}")
        if tp is float:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
            return self.problem(path, f"expected a number, got {_describe(value)}")
        if tp is str:
            if isinstance(value, str):
                return value
            return self.problem(path, f"expected a string, got {_describe(value)}")
        if isinstance(tp, type) and isinstance(value, tp):
            return value
        return self.problem(path, f"cannot read {_describe(value)} as {getattr(tp, '__name__', tp)}")

    # ---- helpers ---------------------------------------------------------------------
    def _upgrade(self, cls: type, fields: Mapping[str, Any], data: Mapping[str, Any], path: str) -> dict[str, Any]:
        """``data`` with renamed keys under their new names and retired keys dropped."""
        out = dict(data)
        for name, field in fields.items():
            for old in field.metadata.get(RENAMED_FROM, ()):
                if old not in out:
                    continue
                if name in out:
                    self.problem(_join(path, old), f"the old name of {name!r}; set only {name!r}")
                    del out[old]
                    continue
                warnings.warn(f"recipe key {_join(path, old)} is now {_join(path, name)}",
                              DeprecationWarning, stacklevel=2)
                out[name] = out.pop(old)
        for old, why in getattr(cls, "__cpcframe_retired__", {}).items():
            if old in out:
                warnings.warn(f"recipe key {_join(path, old)} is no longer used ({why}); remove it",
                              DeprecationWarning, stacklevel=2)
                del out[old]
        return out

    def _registered(self, kind: str, value: Any, path: str) -> bool:
        registry = getattr(self, "registry", None)
        if registry is None:
            return True
        names = [(path, value)] if isinstance(value, str) else [(f"{path}[{i}]", v) for i, v in enumerate(value)]
        ok = True
        for where, name in names:
            try:
                registry.get(kind, name)
            except UnknownComponentError as exc:
                self.problem(where, str(exc))
                ok = False
        return ok

    def _validate(self, field: Any, value: Any, path: str) -> bool:
        try:
            field.validator(None, field, value)
            return True
        except (ValueError, TypeError) as exc:
            message = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
            # attrs' own validators repeat the field name first; the path already says it.
            prefix = f"'{field.name}' "
            if message.startswith(prefix):
                message = message[len(prefix):]
            self.problem(path, message)
            return False

    def _union(self, args: tuple, value: Any, path: str, field: Any) -> Any:
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            return self.structure_value(options[0], value, path, field)
        for option in options:  # first that fits, without recording attempts
            trial = Structurer()
            result = trial.structure_value(option, value, path, field)
            if not trial.problems:
                return result
        names = " or ".join(getattr(o, "__name__", str(o)) for o in options)
        return self.problem(path, f"expected {names}, got {_describe(value)}")

    def _sequence(self, tp: Any, origin: Any, args: tuple, value: Any, path: str) -> Any:
        if not isinstance(value, (list, tuple)):
            return self.problem(path, f"expected an array, got {_describe(value)}")
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                return self.problem(path, f"expected {len(args)} items, got {len(value)}")
            item_types = list(args)
        else:
            item_types = [args[0] if args else Any] * len(value)
        items = [self.structure_value(t, v, f"{path}[{i}]") for i, (t, v) in enumerate(zip(item_types, value))]
        if any(i is _MISSING for i in items):
            return _MISSING
        return tuple(items) if origin is tuple else list(items)

    def _mapping(self, args: tuple, value: Any, path: str) -> Any:
        if not isinstance(value, Mapping):
            return self.problem(path, f"expected a table, got {_describe(value)}")
        value_type = args[1] if len(args) == 2 else Any
        out = {str(k): self.structure_value(value_type, v, _join(path, str(k))) for k, v in value.items()}
        if any(v is _MISSING for v in out.values()):
            return _MISSING
        return out


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _describe(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, (list, tuple)):
        return "an array"
    return f"{type(value).__name__} {value!r}"


def is_missing(value: Any) -> bool:
    return value is _MISSING


def unstructure(value: Any) -> Any:
    """Plain data (dicts, lists, scalars) from attrs instances, for writing TOML."""
    hook = getattr(type(value), "__cpcframe_unstructure__", None)
    if hook is not None:
        return hook(value)
    if attrs.has(type(value)):
        out: dict[str, Any] = {}
        for f in attrs.fields(type(value)):
            item = getattr(value, f.name)
            if not f.init or item is None:
                continue
            if f.metadata.get(GATHERS_TABLES):
                out.update(unstructure(item))  # back in place: [probe.knn]
            else:
                out[f.name] = unstructure(item)
        return out
    if isinstance(value, Mapping):
        return {str(k): unstructure(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [unstructure(v) for v in value]
    return value
