"""Negatives: the policies that say which key items may give them (a table plugins
extend through ``register_negative_policies``), the recipe's choice of one, and the
exact sampler of negatives."""

from cpcframe.negatives.choice import KIND, PolicyChoice, policy_name, resolve_policy, validate_choice
from cpcframe.negatives.policies import (BUILTIN_POLICIES, POLICIES, NegativePolicy, allowed_items,
                                         builtin_policy)
from cpcframe.negatives.sampler import sample_negatives

__all__ = ["BUILTIN_POLICIES", "KIND", "POLICIES", "NegativePolicy", "PolicyChoice", "allowed_items",
           "builtin_policy", "policy_name", "resolve_policy", "sample_negatives", "validate_choice"]
