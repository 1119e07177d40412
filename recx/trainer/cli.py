"""`recx train` (placeholder until the trainer lands)."""


def train_command() -> None:
    """Train a sequence model."""
    raise SystemExit("train: not available yet")
