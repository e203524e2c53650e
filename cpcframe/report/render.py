"""HTML from the report's data through a Jinja2 template (``templates/page.html.j2``).

Autoescaping is on: run names, recipe text and error messages go into the page as text.
The page is self-contained: inline CSS, images as data URIs, no script, no external link.
"""

from __future__ import annotations

from typing import Any

TEMPLATE = "page.html.j2"


def environment():
    import jinja2

    return jinja2.Environment(loader=jinja2.PackageLoader("cpcframe.report", "templates"),
                              autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
                              trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)


def _number(value: Any, digits: int = 3) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:.{digits}f}"
    return "-"


def render(context: dict[str, Any]) -> str:
    """The page for ``context`` (see :func:`cpcframe.report.build.report_context`)."""
    env = environment()
    env.filters["number"] = _number
    return env.get_template(TEMPLATE).render(**context)
