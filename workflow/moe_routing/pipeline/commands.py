"""Config values -> stage command-line words, every one quoted by ``shlex.quote``.

The rules' shell commands contain file paths (from ``paths`` patterns, whose wildcards the schema
restricts to safe names, quoted with Snakemake's ``:q``) and option strings built here. No config
value reaches a shell any other way.
"""

from __future__ import annotations

import shlex


def stage_prefix(python: str) -> str:
    """``python -m moe_routing``, quoted: the start of every stage command."""
    return shlex.join([python, "-m", "moe_routing"])


class StageCommand:
    """``python -m moe_routing`` of a stage, as the rules pass it (``params.moe``): it formats as the quoted words, but
    it is not a string, so that it is no part of a job's identity.

    Snakemake records each job's params and reruns the job when they change; it records only values of builtin types
    (persistence: ``_serialize_param``, anything else is left out). An interpreter path recorded there would rerun
    every job of a finished study after moving the checkout or switching environments; the same ``moe_routing`` code
    in another environment is the same job. tests/test_workflow_demo.py proves it on a copied finished demo.
    """

    def __init__(self, python: str):
        self.words = stage_prefix(python)

    def __format__(self, spec: str) -> str:
        return format(self.words, spec)

    def __str__(self) -> str:
        return self.words

    def __repr__(self) -> str:
        return f"StageCommand({self.words!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, StageCommand) and other.words == self.words

    def __hash__(self) -> int:
        return hash(self.words)


def flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def cli_flags(options: dict, repeated: tuple[str, ...] = ()) -> str:
    """{'split': 'test', 'limit': 5, 'flag': True} -> '--split test --limit 5 --flag' (every value quoted).

    False, None and an empty list leave the flag out; a list gives the flag once with every value, or once per
    value for keys in ``repeated`` (argparse ``action="append"``).
    """
    words: list[str] = []
    for key, value in options.items():
        if value is True:
            words.append(flag(key))
        elif value is False or value is None or (isinstance(value, (list, tuple)) and not value):
            continue
        elif isinstance(value, (list, tuple)):
            if key in repeated:
                for v in value:
                    words += [flag(key), str(v)]
            else:
                words += [flag(key), *(str(v) for v in value)]
        else:
            words += [flag(key), str(value)]
    return shlex.join(words)


def key_values(options: dict) -> list[str]:
    """{'tensor_parallel_size': 2} -> ['tensor_parallel_size=2'] (values as YAML would read them back)."""
    out = []
    for key, value in options.items():
        text = "true" if value is True else "false" if value is False else str(value)
        out.append(f"{key}={text}")
    return out
