"""What the chosen compression stages need from the model, checked on the driver before Ray starts."""

from __future__ import annotations

from typing import Any


def check_compressible(config: dict[str, Any], compression) -> None:
    """Build the DataModule, LitModule and callbacks once, and check what the chosen stages need."""
    from orchestrator.compression.distill import check_distillable
    from orchestrator.compression.prune import check_channel_layers
    from orchestrator.compression.stages import (
        DISTILLATION,
        STRUCTURED_PRUNING,
        skipped_methods,
    )
    from orchestrator.config.build import check_buildable

    datamodule, model = check_buildable(config)
    skipped = skipped_methods(compression, model)  # said when the stages run
    if "prune" in compression.stages and compression.prune.channel_ratios and STRUCTURED_PRUNING not in skipped:
        check_channel_layers(model, compression.prune.channel_layers)
    if "distill" in compression.stages and DISTILLATION not in skipped:
        check_distillable(config, compression.distill, datamodule, model)
