"""One Markdown table from several `latentdirs compare` folders: one row per folder and method.

Each LD lever is measured as its own comparison folder (``--ld-set KEY=VALUE`` for the lever),
so that it resumes cell by cell and adds seeds later. This script puts them side by side with
the options that set them apart (``ld_options``) and the number of seeds each row averages:

    python benchmarks/levers_table.py docs/compare/levers/*          # the folders docs/compare.md cites

Cells still running (no result.json yet) are left out of the means, and the row says how many
seeds it has.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from latentdirs.evaluation.compare import summarize

COLUMNS = (("rca", "RCA"), ("mig", "MIG"), ("dci_disentanglement", "DCI-D"), ("encoder_r2", "encoder R²"),
           ("find_seconds", "time to find (s)"))


def rows_of(folder: Path) -> list[list[str]]:
    config = json.loads((folder / "config.json").read_text())["compare"]
    results = [json.loads(p.read_text()) for p in sorted(folder.glob("*/seed*/result.json"))]
    preset = config.get("ld_preset", "short")  # folders from before ld_preset ran over the short preset
    start = config.get("ld_start", config.get("ld_init"))  # ld_init: its name in folders written before
    given = {**({"preset": preset} if preset != "short" else {}),
             **({"start": start} if start not in (None, "axes") else {}),
             **config.get("ld_options", {})}
    options = ", ".join(f"{k}={v}" for k, v in given.items()) or "—"
    rows = []
    for method, scores in summarize(results, config["methods"]).items():
        if not scores:
            continue
        seeds = max(count for _, _, count in scores.values())
        cells = [f"{scores[key][0]:.3f} ± {scores[key][1]:.3f}" if key in scores else "—" for key, _ in COLUMNS]
        rows.append([folder.name, method, options, str(seeds)] + cells)
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path, help="compare folders (each with config.json)")
    args = parser.parse_args(argv)
    header = ["folder", "method", "LD options", "seeds"] + [label for _, label in COLUMNS]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for folder in args.folders:
        if (folder / "config.json").exists():
            for row in rows_of(folder):
                print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
