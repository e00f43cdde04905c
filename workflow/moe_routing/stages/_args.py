"""The stages' command-line parser, and the argument types they share: the one way a stage is told which
dataset a file belongs to."""

from __future__ import annotations

import argparse
import math
import sys
from typing import NoReturn

from moe_routing.core.errors import ConfigError

# the options an ArgumentParser has seen in the current parse, kept on the namespace while it parses
_GIVEN = "_options_given"


class _StoreOnce(argparse._StoreAction):
    """``store``, except that an option given twice is an error instead of the last one silently winning."""

    def __call__(self, parser, namespace, values, option_string=None):
        if option_string is not None:
            given = namespace.__dict__.setdefault(_GIVEN, set())
            if self.dest in given:
                raise argparse.ArgumentError(self, "given more than once")
            given.add(self.dest)
        super().__call__(parser, namespace, values, option_string)


class StageParser(argparse.ArgumentParser):
    """The parser of ``python -m moe_routing`` and of every stage (subparsers are of their parent's class): an option
    that stores one value may be given once, and a usage error is one line on stderr, exit code 2."""

    def add_argument(self, *args, **kwargs):
        if kwargs.get("action", "store") == "store":
            kwargs["action"] = _StoreOnce
        return super().add_argument(*args, **kwargs)

    def parse_known_args(self, args=None, namespace=None):
        parsed, rest = super().parse_known_args(args, namespace)
        parsed.__dict__.pop(_GIVEN, None)
        return parsed, rest

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {' '.join(message.split())}", file=sys.stderr)
        raise SystemExit(2)


def named_path(text: str) -> tuple[str, str]:
    """argparse type of ``NAME=PATH``: a file and the dataset (or benchmark, task) it belongs to."""
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=PATH")
    return name, path


def add_named(parser: argparse.ArgumentParser, flag: str, what: str, required: bool = True) -> None:
    parser.add_argument(
        flag,
        nargs="+",
        action="extend",
        type=named_path,
        required=required,
        default=[],
        metavar="NAME=PATH",
        help=f"{what}: NAME=PATH, one per file (repeat NAME for several files)",
    )


def add_items(parser: argparse.ArgumentParser, help: str) -> None:
    """``--items`` of the stages that read items files, one per language (repeatable)."""
    parser.add_argument("--items", nargs="+", action="extend", required=True, metavar="ITEMS.parquet", help=help)


def group_named(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    """[(name, path), ...] -> {name: [paths...]} in first-seen order."""
    out: dict[str, list[str]] = {}
    for name, path in pairs:
        out.setdefault(name, []).append(path)
    return out


def single_named(pairs: list[tuple[str, str]], flag: str) -> dict[str, str]:
    """[(name, path), ...] -> {name: path}; a name given twice is an error."""
    out: dict[str, str] = {}
    for name, path in pairs:
        if name in out:
            raise ConfigError(f"{flag} {name}=...: given twice")
        out[name] = path
    return out


SEED_LIMIT = 2**32  # numpy's and torch's seeds are unsigned 32-bit


def number(lo: float = -math.inf, hi: float = math.inf, lo_open: bool = False):
    """argparse type of a finite float in [lo, hi] ((lo, hi] with lo_open): NaN and infinity are refused by name."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if value < lo or value > hi or (lo_open and value == lo):
            left = "(" if lo_open else "["
            raise argparse.ArgumentTypeError(f"{text!r} is outside {left}{lo}, {hi}]")
        return value

    parse.__name__ = "number"
    return parse


def seed(text: str) -> int:
    """argparse type of a seed: an integer in [0, 2**32)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 0 <= value < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"{value} is outside [0, 2**32)")
    return value


def check_values(args: argparse.Namespace) -> None:
    """Every float argument is finite and every --seed fits 32 bits, whichever type its parser gave it."""
    for name, value in vars(args).items():
        flag = "--" + name.replace("_", "-")
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"{flag}: {v} is not a finite number")
            if name == "seed" and isinstance(v, int) and not 0 <= v < SEED_LIMIT:
                raise ConfigError(f"{flag}: {v} is outside [0, 2**32)")
