"""Plain-text tables for the CLI."""

from __future__ import annotations

from collections.abc import Collection, Sequence


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]], *, left: Collection[int] = (0,),
                 rule: bool = True) -> str:
    """``header`` and ``rows`` of strings -> aligned lines: the columns in ``left`` are
    left-aligned, the others (numbers) right-aligned; ``rule`` draws a line under the header.
    The last column is not padded."""
    table = [list(header)] + [list(r) for r in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        out = [c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))]
        return "  ".join(out).rstrip()

    rules = ["  ".join("-" * w for w in widths)] if rule else []
    return "\n".join([line(table[0])] + rules + [line(r) for r in table[1:]])
