"""The pipeline-style parent run: created with the client (not the fluent API), so the training run and
the variant runs can each be the active fluent run beneath it; always ends FINISHED, FAILED or KILLED."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any


@contextmanager
def parent_run(tracking_uri: str, experiment_id: str, run_name: str | None, tags: dict[str, str],
               params: dict[str, Any], config_yaml: str):
    """Yield the id of a new parent run holding `params` and `config.yaml`; end it by how the block ends."""
    from mlflow import MlflowClient
    from mlflow.entities import Param

    from orchestrator.errors import RunInterrupted

    client = MlflowClient(tracking_uri)
    run = client.create_run(experiment_id, tags=tags, run_name=run_name)
    run_id = run.info.run_id
    status = "FAILED"
    try:
        items = [Param(k, str(v)[:6000]) for k, v in params.items()]
        for start in range(0, len(items), 100):
            client.log_batch(run_id, params=items[start:start + 100])
        client.log_text(run_id, config_yaml, "config.yaml")
        yield run_id
        status = "FINISHED"
    except (KeyboardInterrupt, RunInterrupted):
        status = "KILLED"
        raise
    except Exception as err:
        client.set_tag(run_id, "orchestrator.error", f"{err.__class__.__name__}: {err}"[:5000])
        raise
    finally:
        client.set_terminated(run_id, status)
