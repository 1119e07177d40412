"""`recx eval` (placeholder until the eval stage lands)."""


def eval_command() -> None:
    """Rank the full catalog for the latest run."""
    raise SystemExit("eval: not available yet")
