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
    """``python -m moe_routing`` of each backend's environment, as the rules' shell commands write it: ``{MOE}`` is
    the main environment's, ``{MOE:vllm}`` (or ``{MOE:{params.backend}}``) that of the models served by vLLM.

    The rules read it as a workflow global, not from ``params``: Snakemake records each job's params, and the text of
    its shell command before formatting, and reruns the job when either changes. An interpreter path in params would
    make a finished study rerun every job after moving the checkout or switching environments; the environment
    running the same ``moe_routing`` code is not part of a job's identity.
    """

    def __init__(self, main: str, vllm: str):
        self.prefixes = {"hf": stage_prefix(main), "vllm": stage_prefix(vllm)}

    def __format__(self, backend: str) -> str:
        if (backend or "hf") not in self.prefixes:
            raise ValueError(f"no stage command for backend {backend!r}; backends: {sorted(self.prefixes)}")
        return self.prefixes[backend or "hf"]

    def __str__(self) -> str:
        return self.prefixes["hf"]


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
