"""Input contracts where data enter a stage (contracts.check via moe_routing.core.io): bad items and bad
routing arrays are one line naming file, column and row, before any output is written."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from synthetic_files import MOE_LAYERS, E, generations_table, items_table, judgments_table, routing_arrays

from moe_routing.core import contracts
from moe_routing.core import io
from moe_routing.cli import main
from moe_routing.core.errors import EXIT_BAD_INPUT, ContractError

N = 8


def error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


def with_rows(table: pa.Table, **columns) -> pa.Table:
    """``table`` with some columns replaced by python lists."""
    for name, values in columns.items():
        table = table.set_column(
            table.schema.get_field_index(name), table.schema.field(name), pa.array(values, table.schema.field(name).type)
        )
    return table


# ------------------------------------------------------------------ items


def _items(**columns) -> pa.Table:
    return with_rows(items_table("en", N), **columns)


IDS = [f"q{i}" for i in range(N)]
PROMPTS = [f"Question {i}?" for i in range(N)]

BAD_ITEMS = {
    "duplicate id": (
        _items(item_id=IDS[:3] + ["q1"] + IDS[4:]),
        "column 'item_id', row 3: duplicate item id 'q1' (first at row 1)",
    ),
    "null id": (_items(item_id=IDS[:2] + [None] + IDS[3:]), "column 'item_id', row 2: missing item id"),
    "empty id": (_items(item_id=[""] + IDS[1:]), "column 'item_id', row 0: missing item id"),
    "empty prompt": (_items(prompt=PROMPTS[:4] + [""] + PROMPTS[5:]), "column 'prompt', row 4 (item_id 'q4'): empty prompt"),
    "blank prompt": (_items(prompt=PROMPTS[:5] + [" \n\t"] + PROMPTS[6:]), "column 'prompt', row 5 (item_id 'q5'): empty prompt"),
    "null prompt": (_items(prompt=[None] + PROMPTS[1:]), "column 'prompt', row 0 (item_id 'q0'): null prompt"),
    "other language": (
        _items(lang=["en"] * 6 + ["de"] + ["en"]),
        "column 'lang', row 6 (item_id 'q6'): 'de' is not the file's language 'en' (an items file is named after its language: {lang}.parquet)",
    ),
    "null language": (
        _items(lang=["en", None] + ["en"] * 6),
        "column 'lang', row 1 (item_id 'q1'): None is not the file's language 'en' (an items file is named after its language: {lang}.parquet)",
    ),
    "no rows": (items_table("en", 0), "no rows; an items file needs at least one item"),
    "numeric ids": (
        items_table("en", 2).set_column(0, "item_id", pa.array([1, 2])),
        "column 'item_id' must hold string, has int",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_ITEMS))
def test_bad_items_fail_generate_and_judge_before_any_output(tmp_path, capsys, case):
    table, message = BAD_ITEMS[case]
    items = tmp_path / "items" / "en.parquet"
    io.write_parquet(table, items)
    gens = tmp_path / "gen.parquet"
    io.write_parquet(generations_table("en", N), gens)
    out = tmp_path / "out"
    # generate validates every input before it loads a model: the model path is never opened
    for argv in (
        ["generate", "--model", str(tmp_path / "no-model"), "--items", str(items), "--out", str(out / "g.parquet")],
        ["judge", "--items", str(items), "--generations", str(gens), "--out", str(out / "j.parquet"), "--judge", "exact"],
    ):
        assert main(["--log-level", "ERROR", *argv]) == EXIT_BAD_INPUT
        assert error_line(capsys) == f"error: {items}: {message}"
        assert not out.exists()


def test_an_items_file_is_named_after_its_language(tmp_path):
    path = tmp_path / "items.parquet"
    io.write_parquet(items_table("en", 2), path)
    with pytest.raises(
        ContractError, match=r"items\.parquet: column 'lang', row 0 \(item_id 'q0'\): 'en' is not the file's language 'items'"
    ):
        io.read_frame(path, "items")
    # a script or subset variant keeps the code as the whole name: zh_Hant.parquet holds zh_Hant
    variant = tmp_path / "zh_Hant.parquet"
    io.write_parquet(with_rows(items_table("en", 2), lang=["zh_Hant"] * 2), variant)
    assert io.read_frame(variant, "items")["lang"].to_list() == ["zh_Hant"] * 2


def test_writers_of_items_check_the_contract_first(tmp_path):
    """prepare and the demo world write with contract='items': a file named for another language is refused."""
    path = tmp_path / "english.parquet"
    with pytest.raises(ContractError, match="not the file's language 'english'"):
        io.write_parquet(items_table("en", 2), path, contract="items")
    assert not path.exists() and list(tmp_path.iterdir()) == []
    io.write_parquet(items_table("en", 2), tmp_path / "en.parquet", contract="items")


# ------------------------------------------------------------------ routing arrays


def _gens(lang: str = "en", **edits) -> pa.Table:
    """Generations whose routing arrays are edited: edits[column] = (row, flat position, value)."""
    arrays = {k: v.astype(np.float64) for k, v in routing_arrays(N, seed=1).items()}
    for column, (row, pos, value) in edits.items():
        arrays[column][row, pos] = value
    return generations_table(lang, N, arrays=arrays)


def _pos(layer_pos: int, expert: int) -> int:
    return layer_pos * E + expert


BAD_ROUTING = {
    "nan softmax_mean": (
        _gens(softmax_mean=(5, _pos(1, 3), np.nan)),
        f"column 'softmax_mean', row 5 (item_id 'q5'): nan at layer {MOE_LAYERS[1]} expert 3",
    ),
    "inf freq": (
        _gens(freq=(2, _pos(3, 7), np.inf)),
        f"column 'freq', row 2 (item_id 'q2'): inf at layer {MOE_LAYERS[3]} expert 7",
    ),
    "-inf weights": (
        _gens(weights=(0, _pos(0, 0), -np.inf)),
        f"column 'weights', row 0 (item_id 'q0'): -inf at layer {MOE_LAYERS[0]} expert 0",
    ),
    "nan entropy": (_gens(entropy=(7, 2, np.nan)), f"column 'entropy', row 7 (item_id 'q7'): nan at layer {MOE_LAYERS[2]}"),
    "inf consistency": (
        _gens(consistency=(1, 0, np.inf)),
        f"column 'consistency', row 1 (item_id 'q1'): inf at layer {MOE_LAYERS[0]} (NaN is allowed there, infinity is not)",
    ),
    "-nan softmax_mean": (
        _gens(softmax_mean=(3, 0, -np.nan)),
        "column 'softmax_mean', row 3 (item_id 'q3'): nan at layer 1 expert 0",
    ),
}


def _short_row(column: str) -> pa.Table:
    table = _gens()
    values = table.column(column).to_pylist()
    values[4] = values[4][:-1]
    return with_rows(table, **{column: values})


BAD_ROUTING |= {
    "short entropy": (
        _short_row("entropy"),
        "column 'entropy' must hold 4 values per row (4 MoE layers from the schema metadata); row 4 (item_id 'q4') has 3",
    ),
    "short weights": (
        _short_row("weights"),
        "column 'weights' must hold 32 values per row (4 MoE layers x 8 experts from the schema metadata); row 4 (item_id 'q4') has 31",
    ),
    "null freq": (
        with_rows(_gens(), freq=[None] + _gens().column("freq").to_pylist()[1:]),
        "column 'freq' must hold 32 values per row (4 MoE layers x 8 experts from the schema metadata); row 0 (item_id 'q0') has null",
    ),
    "no metadata": (_gens().replace_schema_metadata(None), "schema metadata lacks ['moe_layers', 'num_experts'"),
}


def _no_tokens() -> pa.Table:
    """A sequence with no counted tokens: the accumulator's all-NaN row (not a valid generation)."""
    arrays = routing_arrays(N, seed=1)
    for v in arrays.values():
        v[6] = np.nan
    return generations_table("en", N, arrays=arrays)


BAD_ROUTING["no counted tokens"] = (
    _no_tokens(),
    f"column 'weights', row 6 (item_id 'q6'): nan at layer {MOE_LAYERS[0]} expert 0",
)


@pytest.mark.parametrize("case", sorted(BAD_ROUTING))
def test_bad_routing_arrays_fail_every_reader(tmp_path, capsys, case):
    table, message = BAD_ROUTING[case]
    bad, de = tmp_path / "generations" / "en.parquet", tmp_path / "generations" / "de.parquet"
    io.write_parquet(table, bad)
    io.write_parquet(_gens("de"), de)
    items, judgments = tmp_path / "items" / "en.parquet", tmp_path / "judgments" / "en.parquet"
    io.write_parquet(items_table("en", N), items)
    io.write_parquet(judgments_table("en", N), judgments)
    out = tmp_path / "out"
    for argv in (
        ["analyze", "--generations", str(bad), str(de), "--out-dir", str(out)],
        ["xici", "--generations", str(bad), "--judgments", str(judgments), "--out", str(out / "e.parquet"), "--no-progress"],
        ["judge", "--items", str(items), "--generations", str(bad), "--out", str(out / "j.parquet"), "--judge", "exact"],
    ):
        assert main(["--log-level", "ERROR", *argv]) == EXIT_BAD_INPUT, argv
        line = error_line(capsys)
        # xici reads the schema metadata before the arrays, so its "no metadata" line is worded its own way
        assert line == f"error: {bad}: {message}" or (
            case == "no metadata" and line.startswith(f"error: {bad}: ") and message in line
        ), line
        assert not out.exists()


def test_nan_consistency_of_short_sequences_is_allowed(tmp_path):
    """Fewer than 2 counted tokens in a layer: no token pair, consistency NaN; the analysis skips it."""
    arrays = routing_arrays(N, seed=1)
    arrays["consistency"][2] = np.nan
    en, de = tmp_path / "en.parquet", tmp_path / "de.parquet"
    io.write_parquet(generations_table("en", N, arrays=arrays), en)
    io.write_parquet(_gens("de"), de)
    assert main(["analyze", "--generations", str(en), str(de), "--out-dir", str(tmp_path / "r")]) == 0
    consistency = io.read_tsv(tmp_path / "r" / "consistency.tsv")
    assert consistency["value"].is_finite().all()
    expected = np.delete(arrays["consistency"], 2, axis=0).astype(np.float32).astype(np.float64).mean(0)
    got = consistency.filter(consistency["lang"] == "en").sort("layer")["value"].to_numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_the_check_covers_every_routing_column(tmp_path, monkeypatch):
    """A routing column added to contracts.ROUTING_COLUMNS is checked without further code."""
    monkeypatch.setattr(
        contracts, "ROUTING_COLUMNS", pa.schema(list(contracts.ROUTING_COLUMNS) + [("topk_mean", pa.list_(pa.float32()))])
    )
    table = _gens()
    values = [[0.1] * (len(MOE_LAYERS) * E) for _ in range(N)]
    values[3][9] = float("nan")
    path = tmp_path / "en.parquet"
    io.write_parquet(table.append_column("topk_mean", pa.array(values, pa.list_(pa.float32()))), path)
    with pytest.raises(
        ContractError, match=rf"column 'topk_mean', row 3 \(item_id 'q3'\): nan at layer {MOE_LAYERS[1]} expert 1$"
    ):
        io.read_table(path, "generations")
    values[3][9] = 0.1
    io.write_parquet(table.append_column("topk_mean", pa.array([v[:-1] for v in values], pa.list_(pa.float32()))), path)
    with pytest.raises(ContractError, match="'topk_mean' must hold 32 values per row"):
        io.read_table(path, "generations")


def test_generate_does_not_write_nan_routing(tmp_path, capsys, monkeypatch):
    """A model whose router produced NaN (fp16 overflow): generate fails naming the file it would write."""
    from moe_routing.capture import backends

    class NanBackend:
        moe_layers, num_experts, load_seconds = MOE_LAYERS, E, 0.0

        def generate(self, frame, plan, options):
            arrays = routing_arrays(frame.height, seed=0)
            arrays["softmax_mean"][1, 5] = np.nan
            return generations_table("en", frame.height, arrays=arrays)

    monkeypatch.setattr(backends, "load_backend", lambda *a, **k: NanBackend())
    items, out = tmp_path / "en.parquet", tmp_path / "out" / "en.parquet"
    io.write_parquet(items_table("en", N), items)
    assert (
        main(["--log-level", "ERROR", "generate", "--model", "unused", "--items", str(items), "--out", str(out)])
        == EXIT_BAD_INPUT
    )
    assert (
        error_line(capsys) == f"error: {out}: column 'softmax_mean', row 1 (item_id 'q1'): nan at layer {MOE_LAYERS[0]} expert 5"
    )
    assert not out.parent.exists() or list(out.parent.iterdir()) == []
