"""`recx quickstart` (placeholder)."""


def quickstart_command() -> None:
    """Run the whole pipeline on a synthetic catalog."""
    raise SystemExit("quickstart: not available yet")
