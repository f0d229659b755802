"""Terminal output for people: rich tables and messages. Nothing else in the package prints."""

from __future__ import annotations

from urllib.parse import urlsplit

from rich.console import Console
from rich.table import Table
from rich.text import Text

console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)


def ui_command(tracking_uri: str) -> tuple[str, str]:
    """(the command that opens the MLflow UI on this store, its base URL)."""
    if urlsplit(tracking_uri).scheme in ("http", "https"):
        return "", tracking_uri.rstrip("/")
    return f"mlflow ui --backend-store-uri {tracking_uri} --host 127.0.0.1 --port 5000", "http://127.0.0.1:5000"


def run_url(base_url: str, experiment_id: str, run_id: str) -> str:
    return f"{base_url}/#/experiments/{experiment_id}/runs/{run_id}"


def print_error(message: str) -> None:
    errors.print(f"[bold red]error:[/] {message}")


def print_warning(message: str) -> None:
    errors.print(f"[bold yellow]warning:[/] {message}")


def print_table(title: str | None, headers: list[str], rows: list[list[str]]) -> None:
    """A plain table (headers and string cells), e.g. the jobs of a Ray cluster."""
    table = Table(title=title, title_justify="left")
    for header in headers:
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))  # cells are data (job entrypoints...), never markup
    console.print(table)


def print_raw(text: str) -> None:
    """Text from elsewhere (a job's log) as it is: no markup, no highlighting, no wrapping."""
    console.out(text, end="", highlight=False)
    console.file.flush()


def print_run_summary(title: str, run_id: str, experiment_id: str, tracking_uri: str,
                      metrics: dict[str, float], where: dict[str, str]) -> None:
    """The end-of-run summary: run id, final metrics, where things are, how to look at them."""
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("MLflow run", run_id)
    for key in sorted(metrics):
        table.add_row(key, f"{metrics[key]:.4f}")
    for label, value in where.items():
        table.add_row(label, value)
    command, base_url = ui_command(tracking_uri)
    if command:
        table.add_row("open the UI", command)
    table.add_row("then browse", run_url(base_url, experiment_id, run_id))
    console.print(table)
