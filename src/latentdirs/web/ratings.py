"""Human ratings of directions: the paper's MOS protocol, stored in SQLite.

An assessor sees every direction of the compared sets, shuffled together and blind, each
as a chart over the same fixed latents, and answers two questions:

1. does the direction act consistently across the latents?
2. does it change one single factor, easy to name?

A direction counts as interpretable for that assessor when both answers are yes; the MOS
of a set is the mean of that 0/1 verdict over assessors and directions. An optional
category (geometry / texture / colour / other) gives the paper's per-category shares, and
free-text names, when assessors agree, can be written back into the direction set.

One row per (assessor, set, direction), committed as soon as it is given, so a crash or
restart loses nothing and an assessor resumes where they stopped.
"""
from __future__ import annotations

import csv
import hashlib
import io
import random
import sqlite3
import time
import unicodedata
from collections import Counter, defaultdict
from contextlib import closing
from pathlib import Path

CATEGORIES = ("geometry", "texture", "colour", "other")
DB_NAME = "ratings.sqlite"
MAX_NAME_LENGTH = 80

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    id            INTEGER PRIMARY KEY,
    assessor      TEXT    NOT NULL,
    set_name      TEXT    NOT NULL,
    direction     INTEGER NOT NULL,
    consistent    INTEGER NOT NULL CHECK (consistent IN (0, 1)),
    single_factor INTEGER NOT NULL CHECK (single_factor IN (0, 1)),
    category      TEXT,
    name          TEXT    NOT NULL DEFAULT '',
    position      INTEGER,
    answered_at   TEXT    NOT NULL,
    UNIQUE (assessor, set_name, direction)
);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class RatingError(ValueError):
    """An answer or request the rating protocol cannot accept."""


class DatabaseFileError(ValueError):
    """The answers database is not a readable ratings database (corrupt, truncated, another file)."""


_COLUMNS = {"assessor", "set_name", "direction", "consistent", "single_factor", "category", "name", "position",
            "answered_at"}


def _text(value, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):  # a list or object would be stored as its str()
        raise RatingError(f"{what} must be a string, got {type(value).__name__}")
    # An unpaired surrogate cannot be stored as UTF-8 (was an HTTP 500); a control character would reach
    # the terminal of `latentdirs mos` and the saved direction names. Whitespace is collapsed by the callers.
    bad = next((ch for ch in value if unicodedata.category(ch) in ("Cc", "Cs") and not ch.isspace()), None)
    if bad is not None:
        raise RatingError(f"{what} holds the control or unpaired surrogate character {bad!r}; use printable text")
    return value


def clean_assessor(name: str) -> str:
    name = " ".join(_text(name, "the assessor name").split())
    if not name:
        raise RatingError("enter an assessor name")
    if len(name) > 64:
        raise RatingError("assessor names are at most 64 characters")
    return name


class RatingStore:
    """The answers table of one SQLite file. Each call opens its own connection, so the
    store can be shared between the threads of a web server."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with closing(self._connect()) as db, db:
                db.executescript(_SCHEMA)
                columns = {row["name"] for row in db.execute("PRAGMA table_info(answers)")}
                problem = db.execute("PRAGMA quick_check").fetchone()[0]
        except sqlite3.Error as exc:
            raise self._unreadable(exc) from None
        if not _COLUMNS <= columns:
            raise DatabaseFileError(f"{self.path} is an SQLite file but not a ratings database (its answers table "
                                    f"lacks {', '.join(sorted(_COLUMNS - columns))}); pass another --db")
        if problem != "ok":
            raise DatabaseFileError(f"{self.path} is damaged (sqlite quick_check: {problem}); copy it away and "
                                    "recover what it holds with `sqlite3 FILE .recover`, or pass another --db")

    def _unreadable(self, exc: Exception) -> DatabaseFileError:
        return DatabaseFileError(f"could not open the ratings database {self.path}: {exc} (truncated, damaged or "
                                 "not a ratings database); pass another --db, or move the file away to start a new one")

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.row_factory = sqlite3.Row
        return db

    def record(self, assessor: str, set_name: str, direction: int, consistent: bool, single_factor: bool,
               category: str | None = None, name: str = "", position: int | None = None) -> None:
        """Store one answer (replacing the assessor's earlier answer for the same direction)."""
        assessor = clean_assessor(assessor)
        category = _text(category, "category") or None
        if category is not None and category not in CATEGORIES:
            raise RatingError(f"category must be one of {', '.join(CATEGORIES)} (or empty), got {category!r}")
        name = " ".join(_text(name, "the name").split())
        if len(name) > MAX_NAME_LENGTH:
            raise RatingError(f"names are at most {MAX_NAME_LENGTH} characters")
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with closing(self._connect()) as db, db:  # `with db` commits on success
            db.execute(
                "INSERT INTO answers (assessor, set_name, direction, consistent, single_factor, category, name,"
                " position, answered_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (assessor, set_name, direction) DO UPDATE SET consistent = excluded.consistent,"
                " single_factor = excluded.single_factor, category = excluded.category, name = excluded.name,"
                " position = excluded.position, answered_at = excluded.answered_at",
                (assessor, set_name, int(direction), int(bool(consistent)), int(bool(single_factor)), category,
                 name, position, stamp))

    def answers(self, assessor: str | None = None) -> list[dict]:
        query, params = "SELECT * FROM answers", ()
        if assessor is not None:
            query, params = query + " WHERE assessor = ?", (assessor,)
        with closing(self._connect()) as db:
            rows = db.execute(query + " ORDER BY id", params).fetchall()
        return [dict(r, consistent=bool(r["consistent"]), single_factor=bool(r["single_factor"])) for r in rows]

    def setting(self, key: str, default: str | None = None) -> str | None:
        with closing(self._connect()) as db:
            row = db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return default if row is None else row["value"]

    def set_setting(self, key: str, value: str) -> None:
        with closing(self._connect()) as db, db:
            db.execute("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", (key, value))


# -- the order an assessor sees ------------------------------------------------------
def rating_order(items: list[tuple[str, int]], assessor: str) -> list[tuple[str, int]]:
    """All (set, direction) pairs shuffled together, the same order every time for one
    assessor (and independent of the order the sets were given in)."""
    seed = int.from_bytes(hashlib.sha256(clean_assessor(assessor).encode()).digest()[:8], "big")
    order = sorted(items)
    random.Random(seed).shuffle(order)
    return order


# -- results -------------------------------------------------------------------------
def interpretable(answer: dict) -> bool:
    return bool(answer["consistent"]) and bool(answer["single_factor"])


def mos_by_set(answers: list[dict]) -> dict[str, dict]:
    """Per set: MOS (mean over assessors and directions of q1 and q2) and what it rests on."""
    groups = defaultdict(list)
    for a in answers:
        groups[a["set_name"]].append(a)
    table = {}
    for set_name in sorted(groups):
        rows = groups[set_name]
        table[set_name] = {
            "mos": sum(map(interpretable, rows)) / len(rows),
            "consistent": sum(bool(a["consistent"]) for a in rows) / len(rows),
            "single_factor": sum(bool(a["single_factor"]) for a in rows) / len(rows),
            "answers": len(rows),
            "assessors": len({a["assessor"] for a in rows}),
            "directions": len({a["direction"] for a in rows}),
        }
    return table


def mos_by_assessor(answers: list[dict]) -> dict[str, dict[str, float]]:
    """assessor -> set -> that assessor's MOS for the set (how much assessors disagree)."""
    groups = defaultdict(list)
    for a in answers:
        groups[a["assessor"], a["set_name"]].append(interpretable(a))
    table: dict[str, dict[str, float]] = defaultdict(dict)
    for (assessor, set_name), verdicts in sorted(groups.items()):
        table[assessor][set_name] = sum(verdicts) / len(verdicts)
    return dict(table)


def category_rates(answers: list[dict]) -> dict[str, dict[str, float]]:
    """set -> category -> share of answers that are interpretable *and* of that category
    (the paper's Table 1); 'uncategorised' collects interpretable answers without one, so
    the shares of a set add up to its MOS."""
    groups = defaultdict(list)
    for a in answers:
        groups[a["set_name"]].append(a)
    rates = {}
    for set_name in sorted(groups):
        rows = groups[set_name]
        counts = Counter((a["category"] or "uncategorised") for a in rows if interpretable(a))
        rates[set_name] = {c: counts.get(c, 0) / len(rows) for c in CATEGORIES + ("uncategorised",)}
    return rates


def consensus_names(answers: list[dict], min_votes: int = 1) -> dict[str, dict[int, str]]:
    """set -> direction -> the most common free-text name (case-insensitive; ties go to the
    alphabetically first), for directions with at least ``min_votes`` assessors behind it."""
    votes: dict[tuple[str, int], Counter] = defaultdict(Counter)
    spelling: dict[tuple[str, int, str], Counter] = defaultdict(Counter)
    for a in answers:
        name = (a.get("name") or "").strip()
        if name:
            key = (a["set_name"], int(a["direction"]))
            votes[key][name.lower()] += 1
            spelling[key + (name.lower(),)][name] += 1
    names: dict[str, dict[int, str]] = defaultdict(dict)
    for key, counter in sorted(votes.items()):
        best, count = min(counter.items(), key=lambda kv: (-kv[1], kv[0]))
        if count >= min_votes:
            form = min(spelling[key + (best,)].items(), key=lambda kv: (-kv[1], kv[0]))[0]
            names[key[0]][key[1]] = form
    return dict(names)


def summary_rows(answers: list[dict]) -> list[dict]:
    """One row per set: MOS, its parts and the category shares, ready for a CSV or a table."""
    rates = category_rates(answers)
    rows = []
    for set_name, m in mos_by_set(answers).items():
        rows.append({"set": set_name, "mos": round(m["mos"], 4), "consistent": round(m["consistent"], 4),
                     "single_factor": round(m["single_factor"], 4), "assessors": m["assessors"],
                     "directions": m["directions"], "answers": m["answers"],
                     **{c: round(v, 4) for c, v in rates[set_name].items()}})
    return rows


def to_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return out.getvalue()


def answers_csv(answers: list[dict]) -> str:
    keys = ("assessor", "set_name", "direction", "consistent", "single_factor", "category", "name", "answered_at")
    return to_csv([{k: (int(a[k]) if isinstance(a[k], bool) else a[k]) for k in keys} for a in answers])


def format_report(answers: list[dict]) -> str:
    """The MOS table, the per-assessor table and the category shares as plain text."""
    if not answers:
        return "no answers yet"
    lines = ["MOS per set (mean over assessors and directions of: consistent AND single factor)",
             f"{'set':40s} {'MOS':>6s} {'q1':>6s} {'q2':>6s} {'assessors':>9s} {'dirs':>5s} {'answers':>7s}"]
    for s, m in mos_by_set(answers).items():
        lines.append(f"{s:40s} {m['mos']:6.3f} {m['consistent']:6.3f} {m['single_factor']:6.3f} "
                     f"{m['assessors']:9d} {m['directions']:5d} {m['answers']:7d}")
    lines += ["", "MOS per assessor", f"{'assessor':24s} {'set':40s} {'MOS':>6s}"]
    for assessor, per_set in mos_by_assessor(answers).items():
        for set_name, value in per_set.items():
            lines.append(f"{assessor[:24]:24s} {set_name:40s} {value:6.3f}")
    cats = CATEGORIES + ("uncategorised",)
    lines += ["", "Share of interpretable directions per category",
              f"{'set':40s} " + " ".join(f"{c:>13s}" for c in cats)]
    for s, rates in category_rates(answers).items():
        lines.append(f"{s:40s} " + " ".join(f"{rates[c]:13.3f}" for c in cats))
    return "\n".join(lines)


# -- names back into the direction sets ------------------------------------------------
def apply_names(answers: list[dict], sets: dict, min_votes: int = 1) -> dict[str, dict[int, str]]:
    """Write the consensus names into the direction sets (``sets``: name -> ServedSet) and
    save each changed set atomically. Returns what was written."""
    written = {}
    for set_name, names in consensus_names(answers, min_votes).items():
        served = sets.get(set_name)
        if served is None:
            continue
        names = {k: v for k, v in names.items() if 0 <= k < served.directions.num_directions}
        new = list(served.directions.names)
        for k, name in names.items():
            new[k] = name
        if new != served.directions.names:
            served.directions.names = new
            served.directions.save(served.directory)
            written[set_name] = names
    return written
