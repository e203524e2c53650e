"""Run a recipe's probe on a trained run: ``cpcframe probe RUN`` without the printing.

Only the run directory is read (``recipe.toml``, ``model.safetensors``) and ``probe.json``
written; nothing here imports the training package.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING


from cpcframe.errors import UserError
from cpcframe.probing.harness import ProbeHarness
from cpcframe.probing.probe import ProbeResults

if TYPE_CHECKING:
    from cpcframe.registry import Registry


def run_probe(run_dir: str | Path, *, baselines: bool | None = None, overrides: Sequence[str] = (),
              device: str = "auto", registry: "Registry | None" = None) -> ProbeResults:
    """Run the recipe's ``[probe]`` on the trained model of ``run_dir``; write ``probe.json``.

    Args:
        run_dir: a directory written by ``cpcframe run``.
        baselines: also score the baselines; ``None`` takes the probe options' ``baselines``.
        overrides: ``key.path=value`` changes to the saved recipe (``probe.l2=[1e-3]``).
        device: where to compute features (``auto``: CUDA when available).
        registry: the components to build with (default: the installed plugins).

    Returns:
        ``{task: {feature set: accuracy}}``.
    """
    from cpcframe.runs.layout import RunDir
    from cpcframe.runs.loading import load_run
    from cpcframe.runtime import resolve_device

    dev = resolve_device(device, setting="--device")
    loaded = load_run(run_dir, device=dev, registry=registry, overrides=overrides)
    recipe = loaded.recipe
    if recipe.probe is None:
        raise UserError(f"the recipe of {run_dir} has no [probe] section; add one, or pass --set probe.name=NAME")
    if baselines is None:
        baselines = bool(getattr(recipe.probe.config, "baselines", False))
    probe = recipe.probe.build(loaded.registry)
    harness = ProbeHarness(run_dir, recipe, dev, baselines=baselines, registry=loaded.registry)
    results = probe.run(loaded.model, harness)
    run = RunDir(run_dir)
    run.write_probe_results(results)
    import time

    run.write_probe_record({"results": results, "probe": recipe.probe.name, "overrides": list(overrides),
                            "baselines": bool(baselines), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    return results
