"""Progress bars that suit both a terminal and a log file.

On a terminal: tqdm as usual. Redirected to a file (every Snakemake job's log), tqdm's carriage
-return updates would pile up into one line of megabytes; there each update is a plain line, at
most one every ``LOG_INTERVAL`` seconds. tqdm redraws at once when a postfix or description changes
(``refresh=True`` by default), which would print a line per step: in a log file those changes wait for
the next timed line instead.
"""

from __future__ import annotations

import os
import sys

LOG_INTERVAL = 30.0


class _Lines:
    """A file for tqdm that turns each carriage-return redraw into one line."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> None:
        line = text.replace("\r", "").strip()
        if line:
            self.stream.write(line + "\n")

    def flush(self) -> None:
        self.stream.flush()


def _log_bar_class():
    from tqdm import tqdm

    class LogBar(tqdm):
        """tqdm whose postfix and description changes never force a line of their own."""

        def set_postfix(self, ordered_dict=None, refresh=True, **kwargs):
            super().set_postfix(ordered_dict, refresh=False, **kwargs)

        def set_postfix_str(self, s="", refresh=True):
            super().set_postfix_str(s, refresh=False)

        def set_description(self, desc=None, refresh=True):
            super().set_description(desc, refresh=False)

        def set_description_str(self, desc=None, refresh=True):
            super().set_description_str(desc, refresh=False)

    return LogBar


def progress(iterable=None, **kwargs):
    """``tqdm(iterable, **kwargs)``; in a log file, plain lines at most every LOG_INTERVAL seconds."""
    from tqdm import tqdm

    stream = kwargs.pop("file", sys.stderr)
    if getattr(stream, "isatty", lambda: False)():
        return tqdm(iterable, file=stream, **kwargs)
    kwargs.setdefault("mininterval", LOG_INTERVAL)
    kwargs.setdefault("maxinterval", max(LOG_INTERVAL, kwargs["mininterval"]))
    return _log_bar_class()(iterable, file=_Lines(stream), ascii=True, ncols=100, **kwargs)


def quiet_library_bars(stream=None) -> None:
    """In a log file, turn off the bars libraries draw themselves (transformers' weight loading and
    saving, the hub's downloads): they redraw with carriage returns many times a second. Set before
    those libraries are imported (they read it then); a terminal keeps them."""
    stream = sys.stderr if stream is None else stream
    if not getattr(stream, "isatty", lambda: False)():
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
