"""Argument types shared by the stages: the one way a stage is told which dataset a file belongs to."""

from __future__ import annotations

import argparse

from moe_routing.core.errors import ConfigError


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
