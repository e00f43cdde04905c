"""User-facing errors: the CLI prints their message as one line, without a traceback, and exits
with the error's ``exit_code``:

- 2  bad input the user must fix (config, file contents, model, intervention);
- 74 (EX_IOERR) the operating system could not read or write a file (disk full, quota,
  permission denied, I/O error, a directory where a file was expected);
- 75 (EX_TEMPFAIL) out of GPU memory: a retry with a smaller batch can succeed.
"""

EXIT_BAD_INPUT = 2
EXIT_FILE_FAULT = 74
EXIT_OUT_OF_MEMORY = 75


class MoeRoutingError(Exception):
    """Bad input (config, file, model, intervention) that the user must fix."""

    exit_code = EXIT_BAD_INPUT


class ConfigError(MoeRoutingError):
    pass


class ContractError(MoeRoutingError):
    """A file does not follow its documented schema, or is damaged."""


class ModelError(MoeRoutingError):
    """A checkpoint the adapters cannot handle (no MoE router, unknown model_type)."""


class InterventionError(MoeRoutingError):
    """An intervention names a layer or expert the model does not have."""


class DatasetError(MoeRoutingError):
    """A dataset source is missing a language, a column or a row."""


class FileFault(MoeRoutingError):
    """The operating system refused to read or write a file: disk full, permission, I/O error."""

    exit_code = EXIT_FILE_FAULT


class OutOfMemory(MoeRoutingError):
    """The accelerator ran out of memory; a smaller batch may fit."""

    exit_code = EXIT_OUT_OF_MEMORY
