"""`recx data ...` commands (placeholder until the data stage lands)."""
import typer

app = typer.Typer(help="Import, synthesize and describe datasets.", no_args_is_help=True)
