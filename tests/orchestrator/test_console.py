"""console.py's tables at 80 columns, as a pipe reads them: ids whole on one line, headers and values
never cut nor folded, what does not fit left out and named."""

from __future__ import annotations

import hashlib

from tables import line_with, read_table

import orchestrator.console
from orchestrator.console import Column, print_run_summary, print_table

RUN_IDS = [hashlib.md5(str(i).encode()).hexdigest() for i in range(10)]  # 32 hex digits, as MLflow's
PARAMS = ["optimizer.lr", "model.hidden_dim", "optimizer.weight_decay", "scheduler._target_", "data.batch_size"]


def sweep_rows() -> list[list[str]]:
    return [[run_id, f"0.9{i}00", *(f"{i}e-{j + 3}" for j in range(len(PARAMS)))] for i, run_id in enumerate(RUN_IDS)]


def test_a_table_too_wide_leaves_out_its_last_columns_whole_and_names_them(pipe_console):
    columns = [
        Column("run", required=True, shorten=True),
        Column("val/acc", justify="right"),
        *(Column(key, justify="right") for key in PARAMS),
    ]
    print_table("10 runs", columns, sweep_rows())
    text = pipe_console.getvalue()

    headers, rows, after = read_table(text)
    assert headers == ["run", "val/acc", "optimizer.lr", "model.hidden_dim"]  # most important first, each whole
    assert rows == [row[: len(headers)] for row in sweep_rows()]  # every run id and value whole on its row
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80
    note = " ".join(" ".join(after).split())  # the note may wrap, it is no data
    assert "not shown: optimizer.weight_decay, scheduler._target_, data.batch_size" in note and "--json" in note


def test_ids_are_cut_to_unique_prefixes_only_where_the_required_columns_do_not_fit(pipe_console):
    # ids alike in their first 32 characters: the prefix grows until each is unique (git's rule)
    ids = [f"orchestrate-train-20261207-13413{i}-2e4aa{i}" for i in range(3)]
    columns = [Column("job id", required=True, shorten=True), Column("status", required=True)]
    orchestrator.console.console.width = 50  # 40 + 2 + 9 does not fit
    print_table(None, columns, [[job_id, "SUCCEEDED"] for job_id in ids])
    text = pipe_console.getvalue()
    headers, rows, after = read_table(text)
    assert headers == ["job id", "status"]
    prefixes = [row[0] for row in rows]
    assert prefixes == [job_id[:33] for job_id in ids]
    assert "job id cut to unique prefixes" in " ".join(after)

    pipe_console.truncate(0)
    pipe_console.seek(0)
    orchestrator.console.console.width = 80  # room for them: whole
    print_table(None, columns, [[job_id, "SUCCEEDED"] for job_id in ids])
    assert [row[0] for row in read_table(pipe_console.getvalue())[1]] == ids


def test_free_text_wraps_between_words_never_inside_one(pipe_console):
    command = "python -m orchestrator train data=digits model=mlp trainer.max_epochs=2 scaling.num_workers=2 seed=3"
    job_id = "orchestrate-train-20261207-134136-2e4aa9"
    columns = [Column("job id", required=True), Column("status"), Column("entrypoint", wrap=True)]
    print_table(None, columns, [[job_id, "RUNNING", command]])
    text = pipe_console.getvalue()
    assert "RUNNING" in line_with(text, job_id)
    words = text.split()
    assert all(word in words for word in command.split())  # wrapped at spaces only
    assert max(len(line) for line in text.splitlines()) <= 80


def test_a_terminal_too_narrow_for_the_ids_gets_one_block_of_lines_per_row(pipe_console):
    orchestrator.console.console.width = 20
    ids = ["orchestrate-train-20261207-134136-2e4aa9", "orchestrate-train-20261207-134201-77c0d1"]
    print_table(None, [Column("job id", required=True), Column("status")], [[ids[0], "FAILED"], [ids[1], "RUNNING"]])
    text = pipe_console.getvalue()
    assert "job id  " + ids[0] in line_with(text, ids[0]) and "job id  " + ids[1] in line_with(text, ids[1])
    assert "status  RUNNING" in text


def test_run_summary_keeps_the_run_id_the_command_and_the_url_on_one_line(pipe_console, tmp_path):
    uri = f"sqlite:///{tmp_path}/a/rather/long/path/to/the/team/store/mlruns.db"
    run_id = "8f0c2a4e6b8d0f2a4c6e8a0b2d4f6a8c"
    print_run_summary(
        "training run finished", run_id, "3", uri, {"test/acc": 0.9721}, {"checkpoints": str(tmp_path / "ray_results" / run_id)}
    )
    text = pipe_console.getvalue()
    command = f"mlflow ui --backend-store-uri {uri} --host 127.0.0.1 --port 5000"
    assert line_with(text, "--backend-store-uri").endswith(command)
    assert line_with(text, "then browse").endswith(f"http://127.0.0.1:5000/#/experiments/3/runs/{run_id}")
    assert line_with(text, "MLflow run").endswith(run_id) and "0.9721" in line_with(text, "test/acc")
