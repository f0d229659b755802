"""Reading a table as a script behind a pipe does: one line per row, cells apart by two spaces or more."""

from __future__ import annotations

import re

CELL_GAP = re.compile(r"\s{2,}")


def cells(line: str) -> list[str]:
    return CELL_GAP.split(line.strip())


def read_table(text: str) -> tuple[list[str], list[list[str]], list[str]]:
    """(headers, rows, the lines after the table) of the first table in `text`: the headers are the line
    above the rule, a row is a line that starts with its first cell (a line that starts with spaces
    continues the row above and is left out), the table ends at the first line that is neither."""
    lines = text.splitlines()
    rule = next((i for i, line in enumerate(lines) if line.strip() and set(line.strip()) == {"─"}), None)
    assert rule, f"no table (a line of headers over a rule) in:\n{text}"
    headers = cells(lines[rule - 1])
    rows, end = [], len(lines)
    for i, line in enumerate(lines[rule + 1 :], start=rule + 1):
        if line[:1].isspace():
            continue
        if len(cells(line)) != len(headers):
            end = i
            break
        rows.append(cells(line))
    return headers, rows, lines[end:]


def line_with(text: str, needle: str) -> str:
    """The one line of `text` that holds `needle` whole (what `grep needle` prints)."""
    found = [line for line in text.splitlines() if needle in line]
    assert len(found) == 1, f"{needle!r} is on {len(found)} lines of:\n{text}"
    return found[0]
