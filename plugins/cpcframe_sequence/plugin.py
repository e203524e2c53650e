"""Registers the built-in sequence components through the public hooks."""

from __future__ import annotations

from cpcframe import hookimpl

from cpcframe_sequence import context_models, critics


@hookimpl
def register_context_models(register):
    register("gru", context_models.build_gru, context_models.RecurrentConfig)
    register("lstm", context_models.build_lstm, context_models.RecurrentConfig)
    register("transformer", context_models.build_transformer, context_models.TransformerConfig)


@hookimpl
def register_critics(register):
    register("cpc_steps", critics.build_step_critic, critics.StepCriticConfig)
