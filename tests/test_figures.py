"""Every published figure is checked against the results file it came from (docs/figures.json).

Each entry of ``docs/figures.json`` names a doc, the line the figure stands on (a substring of
it, optionally the first such line after an ``after`` marker, or after a list of markers in turn), the text as shown, its source
(a JSON or JSONL results file), the key in it and how it is reduced and rounded. This module

- recomputes each figure from its source and fails when the recorded ``value`` disagrees
  (a results file re-generated without updating the docs);
- formats the value as the doc shows it and fails when that text is not on the named line
  (a doc edited by hand, or a figure rounded differently than it says);
- fails when a number in a table listed under ``complete_tables`` is neither a listed figure nor
  in ``unsourced`` with the reason it has no results file.

A figure spec: ``source`` (path from the repository root; ``.jsonl`` is read as a list of rows),
``key`` (dotted path; a segment may be an index or an fnmatch pattern such as ``*`` or ``w+*``,
which makes the path match several values), ``where`` (keep only list rows with these fields;
``rows``, a dotted path, names that list when it is not the file's top level), ``reduce``
(``one`` by default; ``mean``, ``std`` (sample), ``min``, ``max``, ``median``), or instead
``ratio``/``difference``: a list of two specs; then ``scale`` (e.g. 100 for percent), ``format``
(a Python format spec such as ``.3f``) applied to ``value * scale``. Instead of ``source``/``key``,
``file_size`` (a path) takes the size in bytes of that committed file.

    python tests/test_figures.py          # print every figure: recorded, recomputed, shown
    python tests/test_figures.py --fill   # write recomputed values into docs/figures.json
    python tests/test_figures.py --coverage   # per doc: numbers with an entry, and tables not complete
"""
from __future__ import annotations

import fnmatch
import json
import math
import re
import statistics
import sys
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "docs" / "figures.json"
# a number as a token: not part of a word (shapes3d), of a longer number, or of a version
NUMBER = r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?![\d])(?!\.\d)"


def load_figures() -> dict:
    return json.loads(FIGURES.read_text())


@lru_cache(maxsize=None)
def _read(source: str):
    path = ROOT / source
    text = path.read_text()
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return json.loads(text)


def _walk(node, segments: list[str]) -> list:
    if not segments:
        return [node]
    head, rest = segments[0], segments[1:]
    if isinstance(node, list):
        if head.lstrip("-").isdigit():
            return _walk(node[int(head)], rest)
        if head == "*":
            return [v for item in node for v in _walk(item, rest)]
        raise KeyError(f"list index expected, got {head!r}")
    if isinstance(node, dict):
        if head in node:
            return _walk(node[head], rest)
        matches = [k for k in node if fnmatch.fnmatchcase(k, head)]
        if not matches or not any(c in head for c in "*?["):
            raise KeyError(f"no key {head!r} (have {sorted(node)[:12]})")
        return [v for k in matches for v in _walk(node[k], rest)]
    raise KeyError(f"cannot index {type(node).__name__} with {head!r}")


def _split(key: str) -> list[str]:
    # dots separate segments; a key that itself holds dots or spaces is written in [brackets]
    return [a or b for a, b in re.findall(r"\[([^\]]+)\]|([^.\[\]]+)", key)]


def evaluate(spec: dict) -> float:
    """The number a figure spec points at, from its source file."""
    for op in ("ratio", "difference"):
        if op in spec:
            a, b = (evaluate(s) for s in spec[op])
            return a / b if op == "ratio" else a - b
    if "file_size" in spec:  # the size in bytes of a committed file (e.g. shipped weights)
        return float((ROOT / spec["file_size"]).stat().st_size)
    node = _read(spec["source"])
    if "rows" in spec:  # the list that ``where`` filters and ``key`` starts from, when not the top level
        [node] = _walk(node, _split(spec["rows"]))
    if "where" in spec:
        node = [row for row in node if all(row.get(k) == v for k, v in spec["where"].items())]
    values = [float(v) for v in _walk(node, _split(spec["key"]))]
    reduce = spec.get("reduce", "one")
    if not values:
        raise KeyError(f"{spec['source']}: {spec['key']} matched nothing")
    if reduce == "one":
        if len(values) != 1:
            raise ValueError(f"{spec['source']}: {spec['key']} matched {len(values)} values; give a reduce")
        return values[0]
    if reduce == "std":
        return statistics.stdev(values)
    return {"mean": statistics.fmean, "min": min, "max": max, "median": statistics.median}[reduce](values)


def shown(figure: dict, value: float | None = None) -> str:
    value = figure["value"] if value is None else value
    return format(value * figure.get("scale", 1), figure["format"])


def doc_line(figure: dict) -> str:
    lines = (ROOT / figure["doc"]).read_text().splitlines()
    start = 0
    # ``after``: a marker, or a list of markers found one after the other (a table whose header
    # repeats an earlier table's: the section's marker, then the header)
    for marker in ([figure["after"]] if isinstance(figure.get("after"), str) else figure.get("after", [])):
        start = next((i for i in range(start, len(lines)) if marker in lines[i]), None)
        assert start is not None, f"{figure['doc']}: no line with {marker!r}"
    found = [line for line in lines[start:] if figure["line"] in line]
    assert found, f"{figure['doc']}: no line with {figure['line']!r}" + (f" after {figure['after']!r}" if "after" in figure else "")
    return found[0]


def sources(figure: dict) -> str:
    if "source" in figure:
        return figure["source"]
    if "file_size" in figure:
        return figure["file_size"]
    return " and ".join(sorted({sources(s) for op in ("ratio", "difference") for s in figure.get(op, [])}))


def _id(figure: dict) -> str:
    return f"{figure['doc']}:{figure['line'][:40]}:{figure['text']}"


ALL = load_figures()


@pytest.mark.parametrize("figure", ALL["figures"], ids=_id)
def test_figure_matches_its_source(figure):
    recomputed = evaluate(figure)
    assert math.isclose(recomputed, figure["value"], rel_tol=1e-9, abs_tol=1e-12), (
        f"{sources(figure)} now gives {recomputed!r} ({shown(figure, recomputed)}), docs/figures.json records "
        f"{figure['value']!r}: update the doc and the entry (python tests/test_figures.py --fill)")


@pytest.mark.parametrize("figure", ALL["figures"], ids=_id)
def test_figure_is_shown_in_its_doc_at_the_stated_precision(figure):
    text = shown(figure)
    assert text == figure["text"], f"{figure['value']!r} formatted {figure['format']!r} is {text!r}, not {figure['text']!r}"
    line = doc_line(figure)
    assert re.search(rf"(?<![\w.]){re.escape(text)}(?![\d])(?!\.\d)", line), \
        f"{figure['doc']}: {text!r} ({sources(figure)}) is not on the line {line.strip()!r}"


def _table(doc: str, header: str, after: str | None = None) -> list[str]:
    """Body rows of the Markdown table whose header line contains ``header`` (the first after ``after``)."""
    lines = (ROOT / doc).read_text().splitlines()
    first = next((i for i, line in enumerate(lines) if after in line), None) if after else 0
    assert first is not None, f"{doc}: no line with {after!r}"
    start = next((i for i, line in enumerate(lines) if i >= first and line.startswith("|") and header in line), None)
    assert start is not None, f"{doc}: no table with header {header!r}"
    body = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        body.append(line)
    return body


def _tables(entry: dict) -> list[tuple[str, list[str]]]:
    if "header" in entry:
        return [(entry["header"], _table(entry["doc"], entry["header"], entry.get("after")))]
    # every table of the doc
    lines = (ROOT / entry["doc"]).read_text().splitlines()
    return [(lines[i], _table(entry["doc"], lines[i])) for i in range(len(lines) - 1)
            if lines[i].startswith("|") and re.match(r"^\|[-|: ]+\|$", lines[i + 1])]


def _covered_numbers() -> dict[str, set[tuple[str, str]]]:
    """{doc: (line, number)} for every number that a figure or an unsourced entry accounts for."""
    covered: dict[str, set[tuple[str, str]]] = {}
    for entry in ALL["figures"] + ALL["unsourced"]:
        covered.setdefault(entry["doc"], set()).update((doc_line(entry), n) for n in re.findall(NUMBER, entry["text"]))
    return covered


def test_every_number_in_a_listed_table_has_a_source():
    covered = _covered_numbers()
    missing = []
    for entry in ALL["complete_tables"]:
        for header, rows in _tables(entry):
            for row in rows:
                cells = row.strip().strip("|").split("|")[1:]  # the first column is the row's label
                for number in re.findall(NUMBER, "|".join(cells)):
                    if (row, number) not in covered.get(entry["doc"], ()):
                        missing.append(f"{entry['doc']} [{header.strip()[:50]}] {row.strip()[:70]}: {number}")
    assert not missing, "numbers with no entry in docs/figures.json:\n" + "\n".join(missing)


def test_unsourced_figures_say_why_and_are_shown():
    for entry in ALL["unsourced"]:
        assert entry.get("why"), entry
        assert entry["text"] in doc_line(entry), entry


def coverage() -> None:
    """Per doc: how many of the numbers in its tables and in its prose have an entry (figure or unsourced),
    and each table not yet complete (``python tests/test_figures.py --coverage``)."""
    covered = _covered_numbers()
    for doc in ["README.md"] + sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md")):
        counts = {"table": [0, 0], "prose": [0, 0]}
        open_tables, header, in_code = [], None, False
        for line in (ROOT / doc).read_text().splitlines():
            in_code ^= line.startswith("```")
            if in_code or line.startswith("```"):
                continue
            kind = "table" if line.startswith("|") else "prose"
            header = (header or line) if kind == "table" else None
            if kind == "table" and header == line:
                continue  # a header's numbers are settings (K = 5); as in the complete-table check
            text = line.strip().strip("|").split("|", 1)[-1] if kind == "table" else line
            numbers = re.findall(NUMBER, re.sub(r"\]\([^)]*\)", "]", text))  # not in link targets
            have = sum((line, n) in covered.get(doc, ()) for n in numbers)
            counts[kind][0] += have
            counts[kind][1] += len(numbers)
            if kind == "table" and have < len(numbers) and header not in open_tables:
                open_tables.append(header)
        print(f"{doc:24s} tables {counts['table'][0]:4d} / {counts['table'][1]:4d}   "
              f"prose {counts['prose'][0]:4d} / {counts['prose'][1]:4d}")
        for header in open_tables:
            print(f"    incomplete: {header.strip()[:90]}")


def main() -> None:
    if "--coverage" in sys.argv:
        return coverage()
    data = load_figures()
    for figure in data["figures"]:
        try:
            value = evaluate(figure)
        except Exception as exc:  # report every broken entry, not only the first
            print(f"ERROR {_id(figure)}: {exc}")
            continue
        recorded = figure.get("value")
        mark = "" if recorded is not None and math.isclose(value, recorded, rel_tol=1e-9) else "  <- changed"
        print(f"{figure['doc']:20s} {figure['text']:>8s}  {shown(figure, value):>8s}  {sources(figure)}{mark}")
        if "--fill" in sys.argv:
            figure["value"] = value
    if "--fill" in sys.argv:
        FIGURES.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
        print(f"wrote {FIGURES}")


if __name__ == "__main__":
    main()
