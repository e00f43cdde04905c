"""Damaged files and file-system faults: one line naming the file, a distinct exit code, nothing
half-written. Page checksums and the footer check (moe_routing.core.io), the fsync of atomic writes,
disk full, unreadable files and out of GPU memory through the CLI."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from synthetic_files import generations_table, judgments_table, write_study

from moe_routing.core import io
from moe_routing.cli import main
from moe_routing.core.contracts import EXPERTS, INTERVENTIONS
from moe_routing.core.errors import EXIT_BAD_INPUT, EXIT_FILE_FAULT, EXIT_OUT_OF_MEMORY, ContractError
from moe_routing.core.footer_check import FOOTER_CHECK_KEYS

ROOT = Path(__file__).resolve().parents[1]
N = 40  # items per language: routing pages of a few KB, so "the middle" of a file is page data


@pytest.fixture
def study(tmp_path):
    paths = write_study(tmp_path / "study", n=N)
    experts = pa.Table.from_pylist(
        [{"item_id": "q1", "layer": 2, "expert": 3, "p_value": 0.01, "p_adjusted": 0.02, "median_diff": 0.1, "rank": 1}],
        schema=EXPERTS,
    )
    plan = pa.Table.from_pylist(
        [{"item_id": "q1", "layer": 2, "expert": 3, "mode": "deactivate", "strength": None}], schema=INTERVENTIONS
    )
    paths["experts"] = {"en": tmp_path / "study" / "experts.parquet"}
    paths["plan"] = {"en": tmp_path / "study" / "plan.parquet"}
    io.write_parquet(experts, paths["experts"]["en"])
    io.write_parquet(plan, paths["plan"]["en"])
    return paths


def stage_commands(p: dict, out: Path) -> dict[str, list[list[str]]]:
    """Per file kind, commands of every stage that reads that kind; each reads the 'en' file of it."""
    gens, items, judgments = p["generations"], p["items"], p["judgments"]
    xici = [
        "xici",
        "--generations",
        *map(str, gens.values()),
        "--judgments",
        *map(str, judgments.values()),
        "--out",
        str(out / "experts.parquet"),
        "--no-progress",
        "--workers",
        "1",
    ]
    judge = ["judge", "--items", str(items["en"]), "--generations", str(gens["en"]), "--out", str(out / "j.parquet")]
    judge += ["--judge", "exact"]
    metrics = ["ablation-metrics", "--original", str(judgments["en"]), "--ablated", str(judgments["de"])]
    metrics += ["--plan", str(p["plan"]["en"]), "--dataset", "d", "--condition", "xici", "--out", str(out / "m.tsv")]
    return {
        "generations": [
            judge,
            xici,
            ["analyze", "--generations", str(gens["en"]), str(gens["de"]), "--out-dir", str(out / "routing")],
        ],
        "items": [
            # generate checks its inputs before it loads a model: no checkpoint needed to see the error
            ["generate", "--model", str(out / "no-model"), "--items", str(items["en"]), "--out", str(out / "g.parquet")],
            judge,
        ],
        "judgments": [
            xici,
            ["accuracy", "--judgments", str(judgments["en"]), "--out", str(out / "acc.tsv")],
            ["outcome-table", "--judgments", *(f"d={j}" for j in judgments.values()), "--out", str(out / "outcomes.tsv")],
            metrics,
        ],
        "experts": [
            [
                "ablation-plan",
                "--experts",
                str(p["experts"]["en"]),
                "--generations",
                str(gens["en"]),
                "--condition",
                "xici",
                "--out",
                str(out / "plan.parquet"),
            ],
            ["figures", "experts-per-layer", "--experts", f"d={p['experts']['en']}", "--out", str(out / "layers.png")],
        ],
        "plan": [
            [
                "generate",
                "--model",
                str(out / "no-model"),
                "--items",
                str(items["en"]),
                "--out",
                str(out / "g.parquet"),
                "--interventions",
                str(p["plan"]["en"]),
            ],
            metrics,
        ],
    }


def overwrite(path: Path, seed: int, nbytes: int = 400, where: str = "middle") -> int:
    """Overwrite ``nbytes`` random bytes of ``path`` at a seeded position; returns the position."""
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(seed)
    footer = len(data) - 8 - int.from_bytes(data[-8:-4], "little")
    lo, hi = {"middle": (len(data) // 4, 3 * len(data) // 4 - nbytes), "footer": (footer, len(data) - 8 - nbytes)}[where]
    pos = min(int(rng.integers(lo, max(lo + 1, hi))), len(data) - 8 - nbytes)
    data[pos : pos + nbytes] = rng.integers(0, 256, nbytes, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    return pos


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


def outputs(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if p.is_file()]


def run_and_expect(capsys, argv: list[str], code: int, *fragments: str) -> str:
    rc = main(argv)
    line = one_error_line(capsys)
    assert rc == code, (argv, line)
    for fragment in fragments:
        assert fragment in line, (argv, line)
    return line


# ------------------------------------------------------------------ checksums


def test_unverified_read_misses_the_damage_that_io_reports(study, tmp_path):
    """The corruption this guards against: pyarrow without verification reads changed numbers silently."""
    path = study["generations"]["en"]
    good = pq.read_table(path)
    silent = 0
    for seed in range(5):
        shutil.copy(path, tmp_path / "copy.parquet")
        overwrite(tmp_path / "copy.parquet", seed)
        try:
            silent += not pq.read_table(tmp_path / "copy.parquet").equals(good)
        except (OSError, pa.ArrowException):
            pass
        with pytest.raises(ContractError, match=r"copy\.parquet: damaged"):
            io.read_table(tmp_path / "copy.parquet", "generations")
    assert silent > 0


@pytest.mark.parametrize("kind", ["generations", "items", "judgments", "experts", "plan"])
def test_damaged_file_fails_every_stage_that_reads_it(study, tmp_path, capsys, kind):
    out = tmp_path / "out"
    path = study[kind]["en"]
    good = path.read_bytes()
    seeds = range(4) if kind == "generations" else range(2)
    for seed in seeds:
        for where in ("middle", "footer"):
            path.write_bytes(good)
            overwrite(path, seed, where=where)
            for argv in stage_commands(study, out)[kind]:
                line = run_and_expect(capsys, ["--log-level", "ERROR", *argv], EXIT_BAD_INPUT, f"{path}: damaged")
                assert outputs(out) == [], (argv, line)


def test_damaged_dictionary_page_is_an_error(tmp_path):
    table = judgments_table("en", 200)  # item_id, lang, judge: dictionary-encoded columns
    path = tmp_path / "en.parquet"
    io.write_parquet(table, path)
    meta = pq.ParquetFile(path).metadata
    chunk = meta.row_group(0).column(meta.schema.names.index("lang"))
    assert chunk.has_dictionary_page
    good = path.read_bytes()
    for offset in range(chunk.dictionary_page_offset, chunk.data_page_offset):
        data = bytearray(good)
        data[offset] ^= 0x55
        path.write_bytes(bytes(data))
        with pytest.raises(ContractError, match="damaged"):
            io.read_table(path, "judgments")


def test_footer_check_covers_the_schema_metadata(tmp_path):
    """Footer damage that pyarrow parses without complaint (a value of the schema metadata) is caught."""
    path = tmp_path / "en.parquet"
    io.write_parquet(generations_table("en", 4), path)
    assert io.read_routing_metadata(path)["num_experts"] == 8
    good = path.read_bytes()
    for old, new in ((b"[1, 2, 3, 4]", b"[1, 2, 3, 5]"), (b"num_experts\x18\x018", b"num_experts\x18\x019")):
        assert good.count(old) == 1
        path.write_bytes(good.replace(old, new))
        with pytest.raises(ContractError, match="footer does not match its checksum"):
            io.read_routing_metadata(path)
        with pytest.raises(ContractError, match="footer does not match its checksum"):
            io.read_table(path)
    # a key renamed: the second copy of the check still catches it
    key = FOOTER_CHECK_KEYS[0]
    path.write_bytes(good.replace(key + b"\x18", key[:-1] + b"7\x18", 1))
    with pytest.raises(ContractError, match="footer does not match"):
        io.read_table(path)
    # the check keys never leak into what a stage reads
    path.write_bytes(good)
    assert not set(FOOTER_CHECK_KEYS) & set(io.read_table(path).schema.metadata)


def test_foreign_file_without_checks_is_read(tmp_path):
    """Items files a user brings (source: items) were not written by io: read with the checks they have."""
    path = tmp_path / "en.parquet"
    pq.write_table(judgments_table("en", 3), path)
    assert io.read_frame(path, "judgments").height == 3


# ------------------------------------------------------------------ durable, atomic writes


def test_atomic_write_syncs_file_then_folder(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append(("replace", str(b))), real_replace(a, b))[1])
    target = tmp_path / "sub" / "en.parquet"
    io.write_parquet(judgments_table("en", 2), target)
    kinds = [e[0] for e in events]
    assert kinds == ["fsync", "replace", "fsync"], events
    assert Path(events[0][1]).name.startswith(".en.parquet.") and events[1][1] == str(target)
    assert events[2][1] == str(target.parent)


# ------------------------------------------------------------------ disk full


def _fail_writes(monkeypatch, code: int, where: str):
    """Make the write (or its fsync) fail as the libraries do on a full disk: after writing part of the file."""
    if where == "parquet":

        def write_table(table, tmp, **kw):
            Path(tmp).write_bytes(b"PAR1 partial")
            raise OSError(f"[Errno {code}] Error writing bytes to file. Detail: [errno {code}] {os.strerror(code)}")

        monkeypatch.setattr(io.pq, "write_table", write_table)
    elif where == "tsv":
        import polars as pl

        def write_csv(self, tmp, **kw):
            Path(tmp).write_text("partial")
            raise OSError(f"{os.strerror(code)} (os error {code})")

        monkeypatch.setattr(pl.DataFrame, "write_csv", write_csv)
    else:

        def fsync(fd):
            raise OSError(code, os.strerror(code))

        monkeypatch.setattr(os, "fsync", fsync)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
@pytest.mark.parametrize("where", ["parquet", "tsv", "fsync"])
def test_disk_full_is_one_line_and_leaves_nothing(study, tmp_path, capsys, monkeypatch, code, where):
    out = tmp_path / "out"
    _fail_writes(monkeypatch, code, where)
    if where == "tsv":
        target, argv = out / "acc.tsv", ["accuracy", "--judgments", str(study["judgments"]["en"]), "--out", str(out / "acc.tsv")]
    else:
        target, argv = out / "j.parquet", stage_commands(study, out)["generations"][0]
    what = "no space left on device" if code == errno.ENOSPC else "disk quota exceeded"
    run_and_expect(capsys, ["--log-level", "ERROR", *argv], EXIT_FILE_FAULT, f"{target}: disk full ({what}) while writing it")
    assert outputs(out) == []


def test_disk_full_on_a_real_full_file_system(study, tmp_path):
    """A tiny tmpfs in a private mount namespace, filled up: the libraries' own ENOSPC errors."""
    if not shutil.which("unshare") or subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode:
        pytest.skip("no unprivileged mount namespaces here")
    full = tmp_path / "full"
    full.mkdir()
    moe = f"{sys.executable} -m moe_routing --log-level ERROR"
    gens, judgments = study["generations"], study["judgments"]
    script = (
        f"mount -t tmpfs -o size=64k tmpfs {full} && dd if=/dev/zero of={full}/fill bs=4k count=16 2>/dev/null; "
        f"{moe} judge --items {study['items']['en']} --generations {gens['en']} --out {full}/j.parquet --judge exact; echo rc=$?; "
        f"{moe} accuracy --judgments {judgments['en']} --out {full}/acc.tsv; echo rc=$?; "
        f"{moe} analyze --generations {gens['en']} {gens['de']} --out-dir {tmp_path}/r --figures-dir {full}/figs; echo rc=$?; "
        f"find {full} -type f"
    )
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'workflow'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "MPLBACKEND": "Agg"}
    proc = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert proc.stdout.split() == ["rc=74"] * 3 + [f"{full}/fill"], proc.stdout + proc.stderr
    assert proc.stderr.splitlines() == [
        f"error: {full}/j.parquet: disk full (no space left on device) while writing it; no partial file was left",
        f"error: {full}/acc.tsv: disk full (no space left on device) while writing it; no partial file was left",
        f"error: {full}/figs/divergence.png: disk full (no space left on device) while writing it; no partial file was left",
    ], proc.stderr


# ------------------------------------------------------------------ unreadable files


def test_directory_instead_of_a_file(study, tmp_path, capsys):
    folder = tmp_path / "en.parquet"
    folder.mkdir()
    run_and_expect(
        capsys,
        ["accuracy", "--judgments", str(folder), "--out", str(tmp_path / "a.tsv")],
        EXIT_FILE_FAULT,
        f"{folder}: cannot read it (Is a directory)",
    )
    run_and_expect(
        capsys,
        [
            "analyze",
            "--generations",
            *map(str, study["generations"].values()),
            "--out-dir",
            str(tmp_path / "r"),
            "--accuracy",
            str(folder),
        ],
        EXIT_FILE_FAULT,
        f"{folder}: cannot read it (Is a directory)",
    )
    assert not (tmp_path / "a.tsv").exists() and not (tmp_path / "r").exists()


@pytest.mark.parametrize("code", [errno.EACCES, errno.EIO])
def test_unreadable_file(study, tmp_path, capsys, monkeypatch, code):
    """Permission denied when the file is opened, an I/O error while its pages are read."""
    victim = study["judgments"]["en"]
    real_open = open
    if code == errno.EACCES:

        def fake_open(path, *args, **kwargs):
            if Path(path) == victim:
                raise PermissionError(code, os.strerror(code), str(path))
            return real_open(path, *args, **kwargs)

        monkeypatch.setattr(io, "open", fake_open, raising=False)
    else:

        def read(self, *args, **kwargs):
            raise OSError(f"IOError: Failed reading file. Detail: [errno {code}] {os.strerror(code)}")

        monkeypatch.setattr(pq.ParquetFile, "read", read)
    run_and_expect(
        capsys,
        ["accuracy", "--judgments", str(victim), "--out", str(tmp_path / "a.tsv")],
        EXIT_FILE_FAULT,
        f"{victim}: cannot read it ({os.strerror(code)})",
    )
    assert not (tmp_path / "a.tsv").exists()


def test_permission_denied_for_real(study, tmp_path):
    """chmod 000; root reads anything, so as root the run drops the capabilities that let it."""
    victim = study["judgments"]["en"]
    victim.chmod(0)
    cmd = [
        sys.executable,
        "-m",
        "moe_routing",
        "--log-level",
        "ERROR",
        "accuracy",
        "--judgments",
        str(victim),
        "--out",
        str(tmp_path / "a.tsv"),
    ]
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("root without setpriv reads any file")
        cmd = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *cmd]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "workflow")}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == EXIT_FILE_FAULT, proc.stderr
    assert proc.stderr.splitlines() == [f"error: {victim}: cannot read it (Permission denied)"]
    assert not (tmp_path / "a.tsv").exists()


# ------------------------------------------------------------------ out of GPU memory


class _OomBackend:
    moe_layers, num_experts, load_seconds = [1, 2, 3, 4], 8, 0.0

    def __init__(self, exc):
        self.exc, self.calls = exc, 0

    def generate(self, frame, plan, options):
        raise self.exc


@pytest.mark.parametrize(
    "make",
    [
        lambda: __import__("torch").OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        lambda: RuntimeError("CUDA error: out of memory"),
    ],
)
def test_out_of_gpu_memory(study, tmp_path, capsys, monkeypatch, make):
    from moe_routing.capture import backends

    monkeypatch.setattr(backends, "load_backend", lambda *a, **k: _OomBackend(make()))
    out = tmp_path / "out"
    argv = [
        "generate",
        "--model",
        "unused",
        "--batch-size",
        "8",
        "--max-new-tokens",
        "2",
        "--items",
        str(study["items"]["en"]),
        str(study["items"]["de"]),
        "--out",
        str(out / "en+de.parquet"),
    ]
    run_and_expect(
        capsys,
        ["--log-level", "ERROR", *argv],
        EXIT_OUT_OF_MEMORY,
        "error: generate: out of GPU memory with --batch-size 8; retry with a smaller --batch-size (e.g. 4)",
    )
    assert outputs(out) == []  # nothing half-written


def test_other_runtime_errors_are_not_mistaken_for_oom(study, tmp_path, monkeypatch):
    from moe_routing.capture import backends

    monkeypatch.setattr(backends, "load_backend", lambda *a, **k: _OomBackend(RuntimeError("shape mismatch")))
    with pytest.raises(RuntimeError, match="shape mismatch"):
        main(
            [
                "generate",
                "--model",
                "unused",
                "--items",
                str(study["items"]["en"]),
                str(study["items"]["de"]),
                "--out",
                str(tmp_path / "en+de.parquet"),
            ]
        )


def test_disk_full_while_saving_a_model_leaves_no_half_model(tmp_path):
    """safetensors reports ENOSPC as its own exception type; the demo model's folder swap still cleans up."""
    from moe_routing.demo.model import save
    from moe_routing.core.errors import FileFault

    class Full:
        def save_pretrained(self, folder):
            (Path(folder) / "model.safetensors").write_bytes(b"partial")
            raise RuntimeError(
                'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left on device" })'
            )

    with pytest.raises(FileFault, match=r"demo-model: disk full \(no space left on device\) while writing it"):
        save(Full(), Full(), {"planted_truth.json": "{}"}, tmp_path / "demo-model")
    assert list(tmp_path.iterdir()) == []
