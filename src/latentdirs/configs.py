"""Text -> the value of a config dataclass field: one parser per field type, shared by every command
line (``cli/options.py`` turns them into argparse types) and by ``latentdirs sweep``'s
``--grid`` / ``--set`` values, so ``channels_last=false`` means False wherever it is written.

A config dataclass may declare ``POSITIVE`` (int fields that must be >= 1) and ``CHOICES``
(field -> allowed values). A leaf module: the standard library only.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Callable


def _integer(text: str) -> int:
    """'2000', or a whole number written as '2e3' / '2000.0' (a budget is often written so)."""
    try:
        return int(text)
    except ValueError:
        value = float(text)  # a ValueError here too: not a number
        if not value.is_integer():
            raise ValueError(text) from None
        return int(value)


def _at_least(text: str, minimum: int, expected: str) -> int:
    try:
        value = _integer(text)
    except ValueError:
        raise ValueError(f"expected {expected}, got {text!r}") from None
    if value < minimum:
        raise ValueError(f"expected {expected}, got {value}")
    return value


def positive_int(text: str) -> int:
    return _at_least(text, 1, "a positive integer")


def nonnegative_int(text: str) -> int:
    return _at_least(text, 0, "an integer >= 0")


def nonnegative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"expected a number, got {text!r}") from None
    if not 0 <= value < math.inf:
        raise ValueError(f"expected a finite number >= 0, got {text}")
    return value


def positive_float(text: str) -> float:
    value = nonnegative_float(text)
    if value == 0:
        raise ValueError("expected a number > 0, got 0")
    return value


def boolean(text: str) -> bool:
    """true/false, yes/no, on/off or 1/0."""
    word = text.strip().lower()
    if word in ("true", "yes", "on", "1"):
        return True
    if word in ("false", "no", "off", "0"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def optional(parse: Callable[[str], object]) -> Callable[[str], object]:
    """``parse``, or None for the text 'none' (an optional field left unset)."""
    def parse_or_none(text: str):
        return None if text.strip().lower() == "none" else parse(text)
    parse_or_none.__name__ = f"optional_{parse.__name__}"
    return parse_or_none


optional_int = optional(nonnegative_int)
optional_int.__doc__ = "An integer >= 0, or 'none' for unset."


def int_tuple(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise ValueError(f"expected integers like 0,1,2; got {text!r}") from None


def str_tuple(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())


def int_map(text: str) -> dict[int, int]:
    """'32=64,64=32' -> {32: 64, 64: 32}; '' -> {}."""
    try:
        pairs = [item.split("=") for item in text.split(",") if item.strip()]
        return {int(key): int(value) for key, value in pairs}
    except ValueError:
        raise ValueError(f"expected KEY=VALUE integer pairs like 32=64,64=32, got {text!r}") from None


# a field's annotation (as written, `from __future__ import annotations`) -> its parser
PARSERS: dict[str, Callable[[str], object]] = {
    "int": nonnegative_int, "float": nonnegative_float, "str": str, "bool": boolean,
    "int | None": optional_int, "str | None": optional(str), "bool | None": optional(boolean),
    "tuple[int, ...]": int_tuple, "tuple[str, ...]": str_tuple, "dict[int, int]": int_map,
}


def field_parser(cls, name: str) -> Callable[[str], object]:
    """The parser of field ``name`` of dataclass ``cls`` (``POSITIVE`` ints must be >= 1)."""
    annotation = str(next(f.type for f in dataclasses.fields(cls) if f.name == name))
    if name in getattr(cls, "POSITIVE", ()):
        return positive_int
    if annotation not in PARSERS:
        raise TypeError(f"{cls.__name__}.{name} is a {annotation}, which has no parser from text yet: "
                        "add one to PARSERS in latentdirs/configs.py")
    return PARSERS[annotation]


def is_integer(value) -> bool:
    """An int (numpy's too) and not a bool: what a count, a size or an index must be."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value) -> bool:
    """A real number (int, float, numpy's) and not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_declared(config, error: type[Exception] = ValueError) -> None:
    """An ``error`` naming the first field of ``config`` that breaks what its class declares: an ``int`` or
    ``float`` field below 0, NaN or infinite (what the command line's parsers refuse), a ``POSITIVE`` int
    below 1, a ``CHOICES`` field outside its choices (None passes where the field is ``... | None``)."""
    optional = {f.name for f in dataclasses.fields(config) if str(f.type).endswith("| None")}
    for f in dataclasses.fields(config):
        kind, value = str(f.type).removesuffix(" | None"), getattr(config, f.name)
        if kind not in ("int", "float") or f.name in getattr(config, "POSITIVE", ()) or (
                value is None and f.name in optional):
            continue
        if not (is_integer if kind == "int" else is_number)(value) or not 0 <= value < math.inf:
            raise error(f"{f.name} must be {'an integer' if kind == 'int' else 'a finite number'} >= 0, "
                        f"got {value!r}")
    for name in getattr(config, "POSITIVE", ()):
        value = getattr(config, name)
        if (value is None and name in optional) or (isinstance(value, int) and not isinstance(value, bool)
                                                    and value >= 1):
            continue
        raise error(f"{name} must be a positive integer, got {value!r}")
    for name, allowed in getattr(config, "CHOICES", {}).items():
        value = getattr(config, name)
        if value not in allowed and not (value is None and name in optional):
            raise error(f"{name} must be one of {', '.join(allowed)}, got {value!r}")


def parse_field(cls, name: str, text: str):
    """``text`` as the value of field ``name`` of ``cls``, or a ValueError naming the field and the reason."""
    annotation = str(next(f.type for f in dataclasses.fields(cls) if f.name == name))
    try:
        value = field_parser(cls, name)(text.strip())
    except ValueError as exc:
        raise ValueError(f"{name} takes {annotation} values: {exc}") from None
    allowed = getattr(cls, "CHOICES", {}).get(name)
    if allowed is not None and value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {text.strip()!r}")
    return value
