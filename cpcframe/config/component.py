"""A recipe section that names a registered component and holds its options."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from cpcframe.config.structure import Structurer
    from cpcframe.registry import Component, Registry


@attrs.frozen
class ComponentSpec:
    """``name`` plus the structured config of that component (its plugin's attrs class).

    In TOML::

        [model.encoder]
        name = "cpc_audio"
        hidden = 512
    """

    kind: str
    name: str
    config: Any = None

    def component(self, registry: "Registry") -> "Component":
        return registry.get(self.kind, self.name)

    def build(self, registry: "Registry", **kwargs: Any) -> Any:
        return self.component(registry).build(self.config, **kwargs)

    # ---- structuring hooks (see cpcframe.config.structure) -----------------------------
    @staticmethod
    def __cpcframe_structure__(structurer: "Structurer", value: Any, path: str, field: Any) -> Any:
        from cpcframe.config.structure import _MISSING
        from cpcframe.errors import UnknownComponentError

        kind = field.metadata["kind"]
        if not isinstance(value, Mapping):
            return structurer.problem(path, "expected a table with a 'name' key")
        name = value.get("name")
        if not isinstance(name, str):
            return structurer.problem(f"{path}.name", f"missing the name of a registered {kind.replace('_', ' ')}")
        try:
            component = structurer.registry.get(kind, name)
        except UnknownComponentError as exc:
            return structurer.problem(f"{path}.name", str(exc))
        options = {k: v for k, v in value.items() if k != "name"}
        if component.config is None:
            for key in options:
                structurer.problem(f"{path}.{key}", f"unknown key: {kind} {name!r} takes no options")
            return _MISSING if options else ComponentSpec(kind, name, None)
        config = structurer.structure_class(component.config, options, path)
        if config is _MISSING:
            return _MISSING
        return ComponentSpec(kind, name, config)

    def __cpcframe_unstructure__(self) -> dict[str, Any]:
        from cpcframe.config.structure import unstructure

        out: dict[str, Any] = {"name": self.name}
        if self.config is not None:
            out.update(unstructure(self.config))
        return out


def component_field(kind: str, *, optional: bool = False, default: str | None = None) -> Any:
    """An attrs field holding a :class:`ComponentSpec` of ``kind``: required, ``optional``
    (``None`` when the recipe leaves it out) or, with ``default``, that registered
    component at its default options."""
    if optional:
        return attrs.field(default=None, metadata={"kind": kind})
    if default is not None:
        return attrs.field(default=ComponentSpec(kind, default), metadata={"kind": kind})
    return attrs.field(metadata={"kind": kind})
