"""Lines of the rooms issue 30 names, at a base revision and now: total, code, docstring, comment, blank.

    python benchmarks/house_lines.py                 # base 2319d81 (where issue 30 was filed) vs the work tree
    python benchmarks/house_lines.py --base REV --json benchmarks/results/house_lines.json

A room that was split is counted as the files it became (discovery.py -> discovery/ + devices.py; its
parsers -> configs.py; train-gan's command line -> cli/train_gan.py), so the two sides hold the same work.
"""
from __future__ import annotations

import argparse
import io
import json
import subprocess
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "src/latentdirs/"
ROOMS = ["evaluation/rca.py", "cli/rca.py", "cli/edit.py", "saliency/train.py", "cli/saliency.py", "gan/train.py",
         "cli/train_gan.py", "sweep.py", "cli/options.py", "runs.py", "cells.py", "discovery.py", "discovery/",
         "devices.py", "configs.py"]


def files_at(revision: str | None) -> dict[str, str]:
    """{path: text} of the rooms' Python files at ``revision`` (None: the work tree)."""
    if revision is None:
        paths = [p for room in ROOMS for p in sorted((ROOT / PACKAGE).glob(room + ("*.py" if room.endswith("/")
                                                                                  else "")))]
        return {str(p.relative_to(ROOT)): p.read_text() for p in paths}
    listed = subprocess.run(["git", "ls-tree", "-r", "--name-only", revision, PACKAGE], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout.split()
    wanted = [p for p in listed for room in ROOMS
              if (p.startswith(PACKAGE + room) and p.endswith(".py")) if room.endswith("/") or p == PACKAGE + room]
    return {p: subprocess.run(["git", "show", f"{revision}:{p}"], cwd=ROOT, check=True, capture_output=True,
                              text=True).stdout for p in wanted}


def kinds(text: str) -> dict[str, int]:
    """Each line counted once: docstring (a statement that is only a string), comment-only, blank or code."""
    lines = text.splitlines()
    doc, comment = set(), set()
    previous = tokenize.NEWLINE
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type == tokenize.STRING and previous in (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
                                                          tokenize.NL):
            doc.update(range(token.start[0], token.end[0] + 1))
        if token.type == tokenize.COMMENT and not lines[token.start[0] - 1].split("#")[0].strip():
            comment.add(token.start[0])
        if token.type not in (tokenize.COMMENT, tokenize.NL):
            previous = token.type
    blank = {i for i, line in enumerate(lines, 1) if not line.strip()}
    code = len(lines) - len(doc | comment | blank)
    return {"total": len(lines), "code": code, "docstring": len(doc), "comment": len(comment - doc),
            "blank": len(blank - doc)}


def count(files: dict[str, str]) -> dict:
    per_file = {path: kinds(text) for path, text in files.items()}
    total = {k: sum(f[k] for f in per_file.values()) for k in ("total", "code", "docstring", "comment", "blank")}
    return {"total": total, "files": per_file}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="2319d81", help="revision to compare with")
    parser.add_argument("--json", default=None, help="also write the counts here")
    args = parser.parse_args()
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    result = {"base": args.base, "base_counts": count(files_at(args.base)), "now": f"work tree at {head.strip()}",
              "now_counts": count(files_at(None))}
    for side in ("base_counts", "now_counts"):
        print(f"{side[:-7]:>5}: " + ", ".join(f"{k} {v}" for k, v in result[side]["total"].items()))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
