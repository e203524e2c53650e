"""A test plugin made of the probe that ``docs/writing-plugins.md`` shows under "A
complete probe": the code block is read from the guide and run here, so the guide's probe
is the one the tests register (``group_id``) and a change to it is tested as written."""

from __future__ import annotations

from testpaths import ROOT

GUIDE = ROOT / "docs" / "writing-plugins.md"


def documented_probe() -> str:
    """The first ``python`` code block after the guide's "### A complete probe" heading."""
    section = GUIDE.read_text(encoding="utf-8").split("\n### A complete probe\n", 1)[1]
    return section.split("```python\n", 1)[1].split("\n```", 1)[0]


exec(compile(documented_probe(), f"{GUIDE} (A complete probe)", "exec"), globals())
