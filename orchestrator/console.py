"""Terminal output for people: rich tables and messages. Nothing else in the package prints.

Every table fits the console ($COLUMNS, else the terminal's width, else 80 columns) without folding
anything: an id stays whole on one line, so `| grep ID` finds it, and a header or value is never cut
to "…" nor folded a character per line. What does not fit is left out, least important (rightmost)
column first, and one line under the table names it and says where to see it (`--json`, a wider
terminal); a console too narrow even for the ids prints each row as a block of labelled lines.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)

ID_PREFIX_MIN = 8  # the shortest id prefix a table shows (git shows 7 hex digits)
COLUMN_GAP = 2  # spaces between two columns: a right padding of 1 and the box's blank divider


@dataclass(frozen=True)
class Column:
    """One column of `print_table`. Columns come in order of importance: when the table is too wide,
    the rightmost one that is not `required` is left out first.

    Args:
        header: the column's name, always shown whole on one line.
        justify: "right" for numbers.
        required: never left out (the column that says which row is which).
        shorten: a column of ids (one per line in a cell) that may show their shortest prefix unique in
            the table, at least ID_PREFIX_MIN characters as git does, before the column is left out.
        wrap: free text (a command line, a message) that may wrap between words, never inside one.
        style: the rich style of the column's cells.
    """

    header: str
    justify: Literal["left", "right"] = "left"
    required: bool = False
    shorten: bool = False
    wrap: bool = False
    style: str | None = None


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


def print_table(
    title: str | None, columns: list[Column], rows: list[list[str]], *, see_all: str = "--json", row_styles: list[str | None] | None = None
) -> None:
    """Rows of string cells (data, never markup) as a table that fits the console's width.

    `see_all` says where what the table leaves out can be seen whole (an option, a command).
    """
    rows = [[str(cell) for cell in row] for row in rows]
    width = console.width
    shown, prefixes = _fit(columns, rows, width)
    if title:
        console.print(Text(title, style="table.title"), soft_wrap=True)
    if shown is None:  # not even the required columns fit: one block of "header: value" lines per row
        _print_records(columns, rows)
        return
    widths = _wrap_widths(columns, rows, shown, prefixes, width)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, padding=(0, COLUMN_GAP - 1, 0, 0), pad_edge=False, header_style="bold")
    for i in shown:
        column = columns[i]
        table.add_column(
            Text(column.header, no_wrap=True),
            justify=column.justify,
            style=column.style,
            no_wrap=not column.wrap,
            overflow="fold",
            width=widths.get(i),
        )
    for r, row in enumerate(rows):
        cells = [_cut(row[i], prefixes[i]) if i in prefixes else row[i] for i in shown]
        table.add_row(*(Text(cell) for cell in cells), style=row_styles[r] if row_styles else None)
    console.print(table)
    cut = [columns[i].header for i in shown if i in prefixes]
    left_out = [column.header for i, column in enumerate(columns) if i not in shown]
    if cut or left_out:
        said = ([f"{', '.join(cut)} cut to unique prefixes"] if cut else []) + ([f"not shown: {', '.join(left_out)}"] if left_out else [])
        console.print(Text(f"at {width} columns, {'; '.join(said)} (everything, whole: {see_all}, or a wider terminal)"))


def print_fields(title: str | None, fields: list[tuple[str, str]]) -> None:
    """Labelled values, one per line (a value of several lines indented under its first): a value is
    never wrapped nor cut by rich, so a long id, path or URL stays whole (a terminal soft-wraps it)."""
    if title:
        console.print(Text(title, style="table.title"), soft_wrap=True)
    label_width = max((cell_len(label) for label, _ in fields), default=0)
    for label, value in fields:
        first, *more = str(value).rstrip("\n").split("\n")
        console.print(Text.assemble((label.ljust(label_width), "bold"), " " * COLUMN_GAP, first), soft_wrap=True)
        for line in more:
            console.print(Text(" " * (label_width + COLUMN_GAP) + line), soft_wrap=True)


def print_json(document) -> None:
    """A JSON document for scripts (`--json`): plain, on stdout, never wrapped."""
    console.out(json.dumps(document, indent=2), highlight=False)


def _fit(columns: list[Column], rows: list[list[str]], width: int) -> tuple[list[int] | None, dict[int, int]]:
    """Which columns to show, and the prefix length of each id column cut, for the table to fit `width`.
    Give up the rightmost optional column (cutting its ids first, if it has any), then cut the required
    ids; then give back, in order, what fits again. None when even the required columns do not fit."""
    shown, prefixes = list(range(len(columns))), {}
    narrowest: dict[tuple[int, int | None], int] = {}  # (column, prefix) -> width: a sweep may have 1000 rows

    def fits(indexes: list[int]) -> bool:
        for i in indexes:
            if (i, prefixes.get(i)) not in narrowest:
                narrowest[i, prefixes.get(i)] = _column_widths(columns[i], [row[i] for row in rows], prefixes.get(i))[0]
        return sum(narrowest[i, prefixes.get(i)] for i in indexes) + COLUMN_GAP * (len(indexes) - 1) <= width

    while not fits(shown):
        optional = [i for i in shown if not columns[i].required]
        uncut = [i for i in (optional[-1:] or shown[::-1]) if columns[i].shorten and i not in prefixes]
        if uncut:
            prefixes[uncut[0]] = _unique_prefix(row[uncut[0]] for row in rows)
        elif optional:
            shown.remove(optional[-1])
        else:
            return None, prefixes
    for i in range(len(columns)):
        if i not in shown and fits(sorted([*shown, i])):
            shown = sorted([*shown, i])
    return shown, {i: n for i, n in prefixes.items() if i in shown}


def _column_widths(column: Column, cells: list[str], prefix: int | None) -> tuple[int, int]:
    """(narrowest, natural) width of a column: its longest word if it wraps, else its longest line."""
    lines = [line[:prefix] if prefix else line for cell in cells for line in cell.split("\n")]
    natural = max([cell_len(column.header), *(cell_len(line) for line in lines)])
    if not column.wrap:
        return natural, natural
    words = [word for line in lines for word in line.split()]
    return max([cell_len(column.header), *(cell_len(word) for word in words)]), natural


def _wrap_widths(columns: list[Column], rows: list[list[str]], shown: list[int], prefixes: dict[int, int], width: int) -> dict[int, int]:
    """The width of each wrapping column, when the table is wider than `width` at its natural width:
    the widest wrapping column narrows first, never below its longest word."""
    bounds = {i: _column_widths(columns[i], [row[i] for row in rows], prefixes.get(i)) for i in shown}
    widths = {i: natural for i, (_, natural) in bounds.items()}
    excess = sum(widths.values()) + COLUMN_GAP * (len(shown) - 1) - width
    wrapping = [i for i in shown if columns[i].wrap]
    while excess > 0:
        narrowable = [i for i in wrapping if widths[i] > bounds[i][0]]
        if not narrowable:
            break
        widest = max(narrowable, key=lambda i: widths[i])
        widths[widest] -= 1
        excess -= 1
    return {i: widths[i] for i in wrapping}


def _unique_prefix(cells) -> int:
    """The shortest length, at least ID_PREFIX_MIN, at which the ids of a column stay distinct."""
    ids = {line for cell in cells for line in cell.split("\n") if line != "-"}
    longest = max((len(i) for i in ids), default=0)
    for length in range(ID_PREFIX_MIN, longest):
        if len({i[:length] for i in ids}) == len(ids):
            return length
    return max(longest, ID_PREFIX_MIN)


def _cut(cell: str, length: int) -> str:
    return "\n".join(line[:length] for line in cell.split("\n"))


def _print_records(columns: list[Column], rows: list[list[str]]) -> None:
    """The table transposed, for a terminal too narrow for it: each row a block of labelled lines."""
    for row in rows:
        print_fields(None, [(column.header, cell) for column, cell in zip(columns, row, strict=False)])
        console.print()


def print_raw(text: str) -> None:
    """Text from elsewhere (a job's log) as it is: no markup, no highlighting, no wrapping."""
    console.out(text, end="", highlight=False)
    console.file.flush()


def print_run_summary(
    title: str, run_id: str, experiment_id: str, tracking_uri: str, metrics: dict[str, float], where: dict[str, str]
) -> None:
    """The end-of-run summary: run id, final metrics, where things are, how to look at them."""
    fields = [("MLflow run", run_id), *((key, f"{metrics[key]:.4f}") for key in sorted(metrics)), *where.items()]
    command, base_url = ui_command(tracking_uri)
    if command:
        fields.append(("open the UI", command))
    fields.append(("then browse", run_url(base_url, experiment_id, run_id)))
    print_fields(title, fields)
