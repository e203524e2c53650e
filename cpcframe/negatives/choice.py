"""``[loss] negatives``: the recipe's choice of negative policy, and its resolution.

A recipe names a registered policy::

    [loss]
    negatives = "same_group"

or, for a policy with options, names it in a table of its options::

    [loss.negatives]
    name = "nearby"
    distance = 2

The name is checked against the registry when the recipe is structured (an unknown
name is a problem located at ``loss.negatives``, with close matches); the trainer then
resolves the choice once into the policy function the engine calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Union

from cpcframe.errors import did_you_mean
from cpcframe.negatives.policies import POLICIES, NegativePolicy, builtin_policy

if TYPE_CHECKING:
    from cpcframe.config.component import ComponentSpec
    from cpcframe.config.structure import Structurer
    from cpcframe.registry import Registry

#: The registry kind of negative policies (``hookspecs.KINDS``).
KIND = "negative_policy"

#: A structured choice: the policy's name, or a ``ComponentSpec`` with its options.
Choice = Union[str, "ComponentSpec"]


class PolicyChoice:
    """The type of ``[loss] negatives``: a registered policy's name (``str``), or a table
    ``{name = ..., option = ...}`` (a :class:`~cpcframe.config.ComponentSpec`).

    Not instantiated: it only tells the recipe structurer how to read the value.
    """

    @staticmethod
    def __cpcframe_structure__(structurer: "Structurer", value: Any, path: str, field: Any) -> Any:
        registry = getattr(structurer, "registry", None)
        if isinstance(value, Mapping) and registry is not None:
            from cpcframe.config.component import ComponentSpec

            return ComponentSpec.__cpcframe_structure__(structurer, value, path, field)
        if not isinstance(value, str):
            return structurer.problem(path, f"expected the name of a negative policy, got {value!r}")
        names = registry.names(KIND) if registry is not None else list(POLICIES)
        if value not in names:
            return structurer.problem(path, f"unknown negative policy {value!r}{did_you_mean(value, names)}; "
                                            f"known: {', '.join(names)}")
        if registry is not None:
            try:
                registry.get(KIND, value).default_config()
            except (TypeError, ValueError):
                return structurer.problem(path, f"negative policy {value!r} has options without defaults: "
                                                f"give them in a [{path}] table with name = {value!r}")
        return value


def validate_choice(_instance: Any, _attribute: Any, value: Any) -> None:
    """attrs validator: a policy's name or a ``ComponentSpec`` of kind ``negative_policy``."""
    if isinstance(value, str) and value:
        return
    if getattr(value, "kind", None) == KIND and isinstance(getattr(value, "name", None), str):
        return
    raise ValueError(f"must name a negative policy, got {value!r}")


def policy_name(choice: Choice) -> str:
    """The policy's name, whichever form the choice has."""
    return choice if isinstance(choice, str) else choice.name


def resolve_policy(choice: Choice, registry: "Registry | None" = None) -> NegativePolicy:
    """The policy function of ``choice``: from ``registry`` (built with the recipe's
    options), or a built-in one when there is no registry.

    Raises:
        cpcframe.errors.UnknownComponentError: no plugin registered that name.
        ValueError: without a registry, a name that is not built in.
    """
    if registry is None:
        if not isinstance(choice, str):
            raise ValueError(f"negative policy {policy_name(choice)!r} with options needs the registry")
        return builtin_policy(choice)
    if isinstance(choice, str):
        component = registry.get(KIND, choice)
        policy = component.build()
    else:
        component = choice.component(registry)
        policy = choice.build(registry)
    if not callable(policy):
        raise TypeError(f"negative policy {component.name!r} from plugin {component.plugin!r}: its factory "
                        f"must return a callable (own, groups, num_items) -> (B, N) bool, got {policy!r}")
    return policy
