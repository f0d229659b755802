"""`orchestrate compare`: the runs of an experiment, a sweep or a pipeline side by side.

    orchestrate compare                                   # the runs of tracking.experiment's default
    orchestrate compare --experiment orchestrator --metric val/acc --output compare.png
    orchestrate compare --parent SWEEP_RUN_ID --metric val/acc --metric test/acc
    orchestrate compare --parent SWEEP_RUN_ID --json          # every run whole, for scripts

Prints a table of the runs (the chosen metrics, then the params that differ between them, sorted by the
first metric), writes a plot of the first metric against each varying param with --output, and prints
the MLflow UI URL of the compare view of those runs. The table fits the terminal: run ids stay whole
(a unique prefix only where the terminal is too narrow for them), and the params that do not fit are
left out, the last first, with a line naming them; --json prints every run with all its varying params.
The tracking store is $MLFLOW_TRACKING_URI, else sqlite:///mlruns.db in the working directory (as for
`orchestrate train`), or --tracking-uri.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from orchestrator.errors import ConfigError, OrchestratorError, TrackingError

MAX_RUNS = 1000


@dataclass
class Comparison:
    """Runs side by side: their ids, varying params and metrics."""

    tracking_uri: str
    experiment_id: str
    run_ids: list[str]
    run_names: list[str]
    params: dict[str, list[str]]  # param key -> value per run
    metrics: dict[str, list[float | None]]  # metric key -> value per run


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="orchestrate compare", description=__doc__.split("\n\n")[0])
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--experiment", help="compare the runs of this MLflow experiment (default: orchestrator)")
    scope.add_argument("--parent", metavar="RUN_ID", help="compare the child runs of this sweep or pipeline run")
    parser.add_argument("--metric", action="append", help="metric to show and sort by (repeatable; default: val/acc)")
    parser.add_argument("--mode", choices=("max", "min"), default="max", help="sort the first metric best-first for this mode")
    parser.add_argument("--output", metavar="FILE.png", help="write a plot of the first metric against each varying param")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlruns.db)")
    parser.add_argument("--json", action="store_true", help="print the runs as JSON (full ids, every varying param) for scripts")
    return parser.parse_args(argv)


def compare(tracking_uri: str, experiment: str | None, parent: str | None, metrics: list[str], mode: str = "max") -> Comparison:
    """Collect the runs and what differs between them."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from orchestrator.tracking.runs import differing_params
    from orchestrator.tracking.tags import TAG_KIND, TAG_PARENT

    client = MlflowClient(tracking_uri)
    try:
        if parent:
            parent_run = client.get_run(parent)
            exp_id = parent_run.info.experiment_id
            runs = client.search_runs([exp_id], filter_string=f"tags.`{TAG_PARENT}` = '{parent}'", max_results=MAX_RUNS)
        else:
            name = experiment or "orchestrator"
            found = client.get_experiment_by_name(name)
            if found is None:
                names = [e.name for e in client.search_experiments()]
                raise ConfigError("--experiment", f"no experiment {name!r} in {tracking_uri}", f"known: {', '.join(names) or 'none'}")
            exp_id = found.experiment_id
            # the runs that trained something: a sweep run only summarises its trials
            runs = [r for r in client.search_runs([exp_id], max_results=MAX_RUNS) if r.data.tags.get(TAG_KIND) != "sweep"]
    except MlflowException as err:
        if parent:
            raise ConfigError("--parent", f"no run {parent!r} in {tracking_uri}", "give a sweep or pipeline run id") from err
        raise TrackingError(f"the tracking store {tracking_uri} refused the query: {err}") from err
    if not runs:
        raise ConfigError("--parent" if parent else "--experiment", "has no runs to compare", "run a sweep first: orchestrate train -m ...")
    known = set().union(*(r.data.metrics for r in runs))
    missing = [m for m in metrics if m not in known]
    if missing:
        raise ConfigError("--metric", f"no run reports {', '.join(missing)}", f"choose from {', '.join(sorted(known))}")

    sign = -1 if mode == "max" else 1
    first = metrics[0]
    runs = sorted(runs, key=lambda r: (r.data.metrics.get(first) is None, sign * r.data.metrics.get(first, 0.0)))
    varying = {k: [r.data.params.get(k, "-") for r in runs] for k in differing_params([r.data.params for r in runs])}
    return Comparison(
        tracking_uri,
        exp_id,
        [r.info.run_id for r in runs],
        [r.info.run_name or "" for r in runs],
        varying,
        {m: [r.data.metrics.get(m) for r in runs] for m in metrics},
    )


def compare_url(base_url: str, comparison: Comparison) -> str:
    """The MLflow UI's compare view of these runs."""
    runs = quote(json.dumps(comparison.run_ids, separators=(",", ":")))
    experiments = quote(json.dumps([comparison.experiment_id], separators=(",", ":")))
    return f"{base_url}/#/compare-runs?runs={runs}&experiments={experiments}"


def print_comparison(comparison: Comparison, url: str, command: str) -> None:
    """The runs, best first: run id, the metrics, then the varying params; what does not fit the terminal
    is left out from the right (the run name first), and a line says which."""
    from orchestrator.console import Column, console, print_table

    columns = [Column("run", required=True, shorten=True)]
    columns += [
        Column(key, justify="right", style="bold", required=i == 0)  # the first metric: the sort key
        for i, key in enumerate(comparison.metrics)
    ]
    columns += [Column(key, justify="right") for key in comparison.params]
    columns.append(Column("name"))
    rows = [
        [
            run_id,
            *("-" if comparison.metrics[m][i] is None else f"{comparison.metrics[m][i]:.4f}" for m in comparison.metrics),
            *(_readable(values[i]) for values in comparison.params.values()),
            comparison.run_names[i] or "-",
        ]
        for i, run_id in enumerate(comparison.run_ids)
    ]
    print_table(f"{len(comparison.run_ids)} runs", columns, rows)
    if command:
        console.print(f"open the UI: {command}", soft_wrap=True)
    console.print(f"compare view: {url}", soft_wrap=True)


def comparison_records(comparison: Comparison) -> list[dict]:
    """The runs as --json prints them, best first: full run ids, metrics, every varying param as MLflow stores it."""
    return [
        {
            "run_id": run_id,
            "run_name": comparison.run_names[i],
            "metrics": {key: _json_number(values[i]) for key, values in comparison.metrics.items()},
            "params": {key: values[i] for key, values in comparison.params.items()},
        }
        for i, run_id in enumerate(comparison.run_ids)
    ]


def _json_number(value: float | None) -> float | None:
    """JSON has no NaN nor infinity (a diverged run logs them): null, as for a metric not logged."""
    return value if value is not None and math.isfinite(value) else None


def write_plot(comparison: Comparison, path: Path) -> None:
    from orchestrator.sweeps import plots as sweep_plots

    metric = next(iter(comparison.metrics))
    points = [
        ({k: v[i] for k, v in comparison.params.items()}, value) for i, value in enumerate(comparison.metrics[metric]) if value is not None
    ]
    figure = sweep_plots.metric_vs_params(points, list(comparison.params), metric)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)


def _readable(value: str) -> str:
    """A param as the table shows it: a number to 4 significant digits, a class path by its class."""
    from orchestrator.sweeps.plots import as_number, short_name

    number = as_number(value)
    if isinstance(number, float):
        return value if len(value) <= 8 else f"{number:.4g}"
    return short_name(value)


def main() -> None:
    from orchestrator.console import console, errors, print_json, ui_command
    from orchestrator.errors import report_and_exit
    from orchestrator.tracking.store import resolve_uri

    args = parse_args(sys.argv[1:])
    try:
        uri = resolve_uri(args.tracking_uri)
        comparison = compare(uri, args.experiment, args.parent, args.metric or ["val/acc"], args.mode)
        if args.json:
            print_json(comparison_records(comparison))
        else:
            command, base_url = ui_command(uri)
            print_comparison(comparison, compare_url(base_url, comparison), command)
        if args.output:
            write_plot(comparison, Path(args.output))
            (errors if args.json else console).print(f"plot written to {args.output}", soft_wrap=True)
    except OrchestratorError as err:
        report_and_exit(err)
