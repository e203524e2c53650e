"""The component registry that plugins fill through the ``register_*`` hooks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import attrs

from cpcframe.errors import UnknownComponentError, did_you_mean


@attrs.frozen
class Component:
    """One registered component.

    Attributes:
        kind: ``encoder``, ``context_model``, ``view_sampler``, ``critic``, ``dataset`` or ``probe``.
        name: the name recipes use.
        factory: builds the component from an instance of ``config`` (and kind-specific keywords).
        config: frozen attrs class of its options, or ``None`` when it takes none.
        plugin: name of the plugin that registered it.
        version: that plugin's distribution version, when it came from one.
        description: one line for ``cpcframe plugins``.
    """

    kind: str
    name: str
    factory: Callable[..., Any]
    config: type | None
    plugin: str
    version: str | None = None
    description: str = ""

    def default_config(self) -> Any:
        return self.config() if self.config is not None else None

    def build(self, config: Any = None, **kwargs: Any) -> Any:
        if config is None:
            config = self.default_config()
        return self.factory(config, **kwargs) if self.config is not None else self.factory(**kwargs)


class DuplicateComponentError(Exception):
    """Two plugins registered the same name for one kind (a packaging error, not a user's)."""


class Registry:
    """Components by kind and name, filled from plugins' hooks."""

    def __init__(self) -> None:
        self._components: dict[str, dict[str, Component]] = {}

    def add(self, component: Component) -> None:
        if not attrs.has(component.config) and component.config is not None:
            raise TypeError(f"{component.kind} {component.name!r} from plugin {component.plugin!r}: "
                            f"config must be an attrs class, got {component.config!r}")
        if component.config is not None and "name" in attrs.fields_dict(component.config):
            # In a recipe, `name` picks the component: an option of that name could never be set.
            raise TypeError(f"{component.kind} {component.name!r} from plugin {component.plugin!r}: "
                            f"its config {component.config.__name__} has an option called 'name', which "
                            "recipes use for the component's name; rename the option")
        same_kind = self._components.setdefault(component.kind, {})
        existing = same_kind.get(component.name)
        if existing is not None:
            raise DuplicateComponentError(
                f"{component.kind} {component.name!r} is registered by two plugins: "
                f"{existing.plugin!r} and {component.plugin!r}")
        same_kind[component.name] = component

    def get(self, kind: str, name: str) -> Component:
        same_kind = self._components.get(kind, {})
        if name in same_kind:
            return same_kind[name]
        known = sorted(same_kind)
        hint = did_you_mean(name, known)
        listing = f"; known: {', '.join(known)}" if known and not hint else ""
        if not known:
            listing = "; no plugin registered any (are the plugins installed?)"
        raise UnknownComponentError(f"unknown {kind.replace('_', ' ')} {name!r}{hint}{listing}")

    def names(self, kind: str) -> list[str]:
        return sorted(self._components.get(kind, {}))

    def __iter__(self) -> Iterator[Component]:
        for kind in self._components:
            yield from self._components[kind].values()

    def __len__(self) -> int:
        return sum(len(v) for v in self._components.values())
