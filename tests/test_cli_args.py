"""The stages' command line: an option that takes one value may be given once, for every stage."""

from __future__ import annotations

import pytest

from moe_routing.cli import STAGES, build_parser, main


def test_a_repeated_single_value_option_is_one_line_and_exit_2(tmp_path, capsys):
    items = [str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet")]
    with pytest.raises(SystemExit) as exc:
        main(["generate", "--model", "m", "--items", *items, "--out", str(tmp_path / "x"), "--out", str(tmp_path / "y")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == ["python -m moe_routing generate: error: argument --out: given more than once"]
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_every_stage_rejects_a_repeated_single_value_option(stage):
    """Every stage's parser is the one class, whose plain options store once; options meant to repeat say so
    (action append or extend)."""
    parser = build_parser([stage])
    sub = next(a for a in parser._actions if a.dest == "stage").choices[stage]
    parsers = [sub] + [p for a in sub._actions if a.dest == "figure" for p in a.choices.values()]
    for p in parsers:
        assert type(p) is type(parser), p.prog
        for action in p._actions:
            if action.option_strings and type(action).__name__ == "_StoreAction":
                raise AssertionError(f"{p.prog} {action.option_strings[0]}: a plain store action")


def test_options_meant_to_repeat_still_repeat(tmp_path):
    args = build_parser(["judge"]).parse_args(
        ["judge", "--judge", "contains", "--items", "a.parquet", "--items", "b.parquet", "--generations", "g", "--out", "o"]
    )
    assert args.items == ["a.parquet", "b.parquet"]
    # a parse leaves no bookkeeping on the namespace, and a second parse starts afresh
    assert not [k for k in vars(args) if k.startswith("_")]
    again = build_parser(["judge"]).parse_args(
        ["judge", "--judge", "mc", "--items", "c.parquet", "--generations", "g", "--out", "o"]
    )
    assert again.out == "o"
