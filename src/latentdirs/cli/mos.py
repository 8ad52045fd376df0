"""``latentdirs mos``: MOS of rated direction sets (answers from ``latentdirs serve``)."""
from __future__ import annotations

import argparse
from pathlib import Path

from .options import Formatter, add_rating_options, positive_int


def add_parser(sub) -> None:
    p = sub.add_parser("mos", help="MOS of rated direction sets (answers from `latentdirs serve`)",
                       description="Read the rating answers and print the MOS per set, per assessor and the share "
                                   "of interpretable directions per category.\n\nexamples:\n"
                                   "  latentdirs mos runs/00003-discover-shapes3d-k32-unit\n"
                                   "  latentdirs mos runs/00003-*/ runs/00004-*/ --csv mos.csv\n"
                                   "  latentdirs mos runs/00003-*/ --db ratings.sqlite --apply-names",
                       formatter_class=Formatter)
    add_rating_options(p, help="the run folders that were served")
    p.add_argument("--csv", default=None, help="write the per-set summary (MOS, category shares) to this CSV")
    p.add_argument("--answers-csv", default=None, help="write every answer, one row each, to this CSV")
    p.add_argument("--apply-names", action="store_true",
                   help="write the most common assessor name of each direction into its direction set")
    p.add_argument("--min-votes", type=positive_int, default=1, help="assessors needed behind a name (--apply-names)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..runs import atomic_write_text
    from ..web.images import load_sets
    from ..web.ratings import DB_NAME, RatingStore, answers_csv, apply_names, format_report, summary_rows, to_csv
    for option, path, name in (("--csv", args.csv, "mos.csv"), ("--answers-csv", args.answers_csv, "answers.csv")):
        if path and Path(path).is_dir():  # checked before the report, not after it with a temporary file's name
            raise ValueError(f"{option} {path} is a folder; give a file name, e.g. {Path(path) / name}")
    db = Path(args.db) if args.db else Path(args.sets[0]) / DB_NAME
    if not db.exists():
        raise FileNotFoundError(f"no answers database at {db} (rate with `latentdirs serve` first, or pass --db)")
    sets = load_sets(args.sets, check_generator=False)
    stored = [a for a in RatingStore(db).answers() if a["set_name"] in sets]
    # a set saved again with fewer directions keeps the old answers in the database: they rate nothing now
    answers = [a for a in stored if a["direction"] < sets[a["set_name"]].directions.num_directions]
    if len(answers) < len(stored):
        gone = sorted({(a["set_name"], a["direction"]) for a in stored} - {(a["set_name"], a["direction"])
                                                                           for a in answers})
        print(f"left out {len(stored) - len(answers)} answers for directions the sets no longer have: "
              + ", ".join(f"{name} #{k}" for name, k in gone) + "\n")
    print(format_report(answers))
    if args.csv:
        atomic_write_text(args.csv, to_csv(summary_rows(answers)))
        print(f"\nwrote {args.csv}")
    if args.answers_csv:
        atomic_write_text(args.answers_csv, answers_csv(answers))
        print(f"wrote {args.answers_csv}")
    if args.apply_names:
        written = apply_names(answers, sets, args.min_votes)
        for set_name, names in written.items():
            print(f"named {len(names)} directions of {set_name}: " +
                  ", ".join(f"#{k} {v!r}" for k, v in sorted(names.items())))
        if not written:
            print("no new names to apply")
    return 0
