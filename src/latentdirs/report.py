"""Small Markdown reports: tables and images, written atomically next to what they describe."""
from __future__ import annotations

import os
from pathlib import Path

from .runs import atomic_write_text


def table(headers: list[str], rows: list[list]) -> str:
    def fmt(v):
        return f"{v:.3f}" if isinstance(v, float) else str(v)
    if not headers:
        raise ValueError("a table needs at least one column header")
    ragged = [i for i, row in enumerate(rows) if len(row) != len(headers)]
    if ragged:  # Markdown would shift or drop the cells without a word
        raise ValueError(f"table rows {ragged} do not have {len(headers)} cells like the headers")
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def image(path: str | Path, relative_to: str | Path, alt: str = "") -> str:
    return f"![{alt}]({os.path.relpath(path, relative_to)})"


def write(path: str | Path, title: str, sections: list[tuple[str, str]]) -> Path:
    """``sections`` = [(heading, markdown body)]; writes ``# title`` then ``## heading`` blocks."""
    parts = [f"# {title}\n"] + [f"## {heading}\n\n{body}\n" for heading, body in sections]
    atomic_write_text(path, "\n".join(parts))
    return Path(path)
