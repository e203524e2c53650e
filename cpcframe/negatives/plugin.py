"""The core's negative policies, registered through the public hook like any plugin's
(listed in :data:`cpcframe.plugins.CORE_PLUGINS`)."""

from __future__ import annotations

from cpcframe.hookspecs import hookimpl
from cpcframe.negatives import policies


@hookimpl
def register_negative_policies(register) -> None:
    for name, policy in policies.BUILTIN_POLICIES.items():
        # The policies take no options: each factory returns the function itself.
        register(name, lambda policy=policy: policy, description=policy.__doc__.splitlines()[0])
