"""Progress in a log file: plain lines, at most one per LOG_INTERVAL, whatever the caller redraws."""

from __future__ import annotations

import io
import subprocess
import sys

from moe_routing.core.progress import progress


def test_postfix_changes_do_not_print_a_line_per_step():
    log = io.StringIO()
    bar = progress(range(500), desc="steps", file=log)
    for step in bar:
        bar.set_postfix(loss=f"{1 / (step + 1):.4f}")
        bar.set_description(f"step {step}")
    bar.close()
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    # the first line, the final one at close; nothing for each postfix or description change
    assert 1 <= len(lines) <= 3, lines
    assert "500/500" in lines[-1]


def test_a_terminal_keeps_tqdm_as_usual():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty = Tty()
    bar = progress(range(3), file=tty, mininterval=0)
    for _ in bar:
        bar.set_postfix(x=1)
    bar.close()
    assert "\r" in tty.getvalue()


def test_library_bars_are_off_in_a_log_file():
    """transformers' own bars (weight loading) follow the hub's switch, which quiet_library_bars sets."""
    code = (
        "import io; from moe_routing.core.progress import quiet_library_bars; quiet_library_bars(io.StringIO()); "
        "from transformers.utils import logging; print(logging.is_progress_bar_enabled())"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "HF_HUB_DISABLE_PROGRESS_BARS"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.strip() == "False"
