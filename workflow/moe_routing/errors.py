"""User-facing errors: the CLI prints their message and exits 2, without a traceback."""


class MoeRoutingError(Exception):
    """Bad input (config, file, model, intervention) that the user must fix."""


class ConfigError(MoeRoutingError):
    pass


class ContractError(MoeRoutingError):
    """A file does not follow its documented schema."""


class ModelError(MoeRoutingError):
    """A checkpoint the adapters cannot handle (no MoE router, unknown model_type)."""


class InterventionError(MoeRoutingError):
    """An intervention names a layer or expert the model does not have."""


class DatasetError(MoeRoutingError):
    """A dataset source is missing a language, a column or a row."""
