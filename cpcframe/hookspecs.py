"""The hooks a cpcframe plugin implements: one ``register_*`` hook per component kind.

A plugin is a module (or object) with functions marked ``@cpcframe.hookimpl``, exposed
through the ``cpcframe`` entry-point group::

    [project.entry-points.cpcframe]
    myplugin = "myplugin.plugin"

Every hook receives a ``register`` callable; call it once per component::

    register(name, factory, config=ConfigClass, description="...")

``config`` is a frozen ``attrs`` class whose fields are the component's recipe options
(validated and reported by key path); ``factory`` receives an instance of it first,
followed by the keyword arguments the hook documents. Names are global per kind: two
plugins registering the same name is an error that names both.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

import pluggy

hookspec = pluggy.HookspecMarker("cpcframe")
hookimpl = pluggy.HookimplMarker("cpcframe")


class Register(Protocol):
    """The callable every ``register_*`` hook receives."""

    def __call__(self, name: str, factory: Callable[..., Any], config: type | None = None,
                 *, description: str = "") -> None: ...


@hookspec
def register_encoders(register: Register) -> None:
    """Register encoders: ``factory(config) -> cpcframe.Encoder``.

    The encoder maps a batched view to channels-last features and sets ``output_dim``.
    """


@hookspec
def register_context_models(register: Register) -> None:
    """Register context models: ``factory(config, *, input_dim: int) -> cpcframe.ContextModel``.

    ``input_dim`` is the encoder's ``output_dim``. The model must be causal along the
    axis its critics predict over and set ``output_dim``.
    """


@hookspec
def register_view_samplers(register: Register) -> None:
    """Register view samplers: ``factory(config) -> cpcframe.ViewSampler``.

    The sampler turns one dataset example into the views a model contrasts; it runs in
    loader workers with a seeded generator.
    """


@hookspec
def register_critics(register: Register) -> None:
    """Register critics: ``factory(config, *, latent_dim: int, context_dim: int) -> cpcframe.Critic``.

    ``latent_dim`` is the encoder's and ``context_dim`` the context model's ``output_dim``.
    """


@hookspec
def register_datasets(register: Register) -> None:
    """Register datasets: ``factory(config, *, request: cpcframe.DatasetRequest) -> cpcframe.Dataset``.

    The result is a map-style :class:`cpcframe.Dataset` of :class:`cpcframe.Example`
    with a ``groups`` attribute (``list[int]``, one group id per item) for grouped
    batching. A missing root or file is a :class:`cpcframe.UserError`; an unreadable item
    is skipped and counted in ``dataset.skipped`` (a ``dict[str, int]`` of reason -> count).
    An optional ``check_model(model)`` method is called before training, so a dataset can
    reject a model that does not fit it (a vocabulary larger than the embedding table).
    """


@hookspec
def register_probes(register: Register) -> None:
    """Register probes: ``factory(config) -> cpcframe.Probe``.

    A probe evaluates frozen features of a trained model (e.g. linear phone
    classification) and returns ``{task: {feature_set: accuracy}}``.
    """


@hookspec
def register_negative_policies(register: Register) -> None:
    """Register negative policies: ``factory(config) -> cpcframe.NegativePolicy``.

    A policy is called as ``policy(own, groups, num_items) -> (B, N) bool``: ``own`` is
    ``(B,)`` long, the index of each local item among the ``num_items`` key items;
    ``groups`` is ``(num_items,)`` long group ids, or ``None`` when the batch carries
    none. The result says which key items may give negatives to each local item (a
    query's own positives are excluded by the engine whatever the policy). Recipes pick a
    policy by name: ``[loss] negatives = "NAME"`` (with options: a ``[loss.negatives]``
    table with ``name = "NAME"``).
    """


@hookspec
def register_probe_classifiers(register: Register) -> None:
    """Register probe classifiers:
    ``factory(config, *, options: cpcframe.ProbeOptions) -> cpcframe.ProbeClassifier``.

    A probe classifier is fitted on frozen features ``(N, D)`` with integer labels
    ``(N,)`` and scored by accuracy; probes fit every one their recipe names in
    ``classifiers = [...]`` (the built-in ``linear`` and ``mlp``). ``config`` comes from
    the recipe's ``[probe.NAME]`` table; ``options`` are the probe's own (``l2``,
    ``iterations``, ``[probe.mlp]``, ...).
    """


#: Component kind -> (hook name, human-readable kind). The order is the listing order.
KINDS: dict[str, str] = {
    "encoder": "register_encoders",
    "context_model": "register_context_models",
    "view_sampler": "register_view_samplers",
    "critic": "register_critics",
    "dataset": "register_datasets",
    "probe": "register_probes",
    "negative_policy": "register_negative_policies",
    "probe_classifier": "register_probe_classifiers",
}
