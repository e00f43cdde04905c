"""Operating-system and accelerator faults as one-line errors (errors.FileFault, errors.OutOfMemory).

pyarrow and polars report an OS error as an ``OSError`` whose text holds ``[errno N]`` (pyarrow)
or ``(os error N)`` (polars) but whose ``errno`` is unset, and safetensors as its own exception
type with ``Os { code: N, ...`` in the text; ``os_errno`` reads all of them, so a full disk is
recognised whichever library was writing.
"""

from __future__ import annotations

import errno
import os
import re
import sys

from moe_routing.core.errors import FileFault, OutOfMemory

_ERRNO_TEXT = re.compile(r"\[errno (\d+)\]|\(os error (\d+)\)|\bOs \{ code: (\d+)", re.IGNORECASE)
# faults of the file system, not of the file's contents; ENOENT stays a contract error ("file not found")
FILE_FAULTS = frozenset(
    getattr(errno, name)
    for name in (
        "ENOSPC",
        "EDQUOT",
        "EFBIG",
        "EACCES",
        "EPERM",
        "EROFS",
        "EIO",
        "EISDIR",
        "ENOTDIR",
        "EMFILE",
        "ENFILE",
        "ESTALE",
    )
    if hasattr(errno, name)
)
DISK_FULL = frozenset(getattr(errno, name) for name in ("ENOSPC", "EDQUOT", "EFBIG") if hasattr(errno, name))


def os_errno(exc: BaseException) -> int | None:
    """The errno of an OSError, also when only the message carries it (pyarrow, polars, safetensors)."""
    if isinstance(exc, OSError) and isinstance(exc.errno, int):
        return exc.errno
    found = _ERRNO_TEXT.search(str(exc))
    return int(next(g for g in found.groups() if g)) if found else None


def describe(code: int) -> str:
    if code == errno.ENOSPC:
        return "disk full (no space left on device)"
    if code == getattr(errno, "EDQUOT", -1):
        return "disk full (disk quota exceeded)"
    if code == errno.EFBIG:
        return "file too large for the file system or the process limit"
    return os.strerror(code)


def file_fault(path, exc: BaseException, writing: bool) -> FileFault | None:
    """A FileFault naming ``path`` if ``exc`` is a file-system fault, else None."""
    code = os_errno(exc)
    if code not in FILE_FAULTS:
        return None
    if writing:
        return FileFault(f"{path}: {describe(code)} while writing it; no partial file was left")
    return FileFault(f"{path}: cannot read it ({describe(code)})")


def os_fault(exc: BaseException) -> FileFault | None:
    """A FileFault for a file-system fault raised outside ``moe_routing.core.io`` (loading or saving a model)."""
    code = os_errno(exc)
    if code not in FILE_FAULTS:
        return None
    where = getattr(exc, "filename", None)
    return FileFault(f"{where + ': ' if where else ''}{describe(code)}")


def is_out_of_memory(exc: BaseException) -> bool:
    """torch.OutOfMemoryError, MemoryError, or a runtime error reporting that memory ran out, anywhere in the cause chain."""
    torch = sys.modules.get("torch")
    oom_type = getattr(torch, "OutOfMemoryError", None) if torch is not None else None
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if oom_type is not None and isinstance(exc, oom_type):
            return True
        if isinstance(exc, MemoryError):
            return True
        # CUDA's "out of memory", and the CPU allocator's "can't allocate memory" (a job on a CPU node)
        if isinstance(exc, RuntimeError) and any(t in str(exc).lower() for t in ("out of memory", "can't allocate memory")):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def out_of_memory(stage: str, batch_size: int | None) -> OutOfMemory:
    """One line saying so, and what to retry with (the workflow halves the batch on each retry)."""
    if batch_size is None:
        advice = "retry with a smaller batch or on a larger GPU"
    elif batch_size > 1:
        advice = f"with --batch-size {batch_size}; retry with a smaller --batch-size (e.g. {batch_size // 2})"
    else:
        advice = "even with --batch-size 1; it needs a larger GPU, or shorter outputs (--max-new-tokens)"
    return OutOfMemory(f"{stage}: out of GPU memory {advice}" if batch_size else f"{stage}: out of GPU memory; {advice}")
