"""`recx featurize` and `recx models` (placeholder until the featurize stage lands)."""


def featurize_command() -> None:
    """Encode every item of the workspace dataset into an H5 store."""
    raise SystemExit("featurize: not available yet")


def models_command() -> None:
    """List the encoders recx knows."""
    raise SystemExit("models: not available yet")
