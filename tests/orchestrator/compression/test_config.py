"""compression.* and source.* are checked before any work starts (no Ray, no MLflow run)."""

from __future__ import annotations

import pytest
from compose import compose_config

from orchestrator.config.compression import (
    CompressConfig,
    PipelineConfig,
    register_schemas,
)
from orchestrator.config.schema import validate
from orchestrator.errors import ConfigError

register_schemas()


@pytest.mark.parametrize(
    "override, key",
    [
        ("compression.stages=[baseline,prune,shrink]", "compression.stages[2]"),
        ("compression.quantize.methods=[tensorrt]", "compression.quantize.methods[0]"),
        ("compression.quantize.engine=cuda", "compression.quantize.engine"),
        ("compression.prune.sparsities=[0.5,1.0]", "compression.prune.sparsities[1]"),
        ("compression.prune.sparsities=[0]", "compression.prune.sparsities[0]"),
        ("compression.prune.channel_ratios=[-0.2]", "compression.prune.channel_ratios[0]"),
        ("compression.distill.alpha=1.5", "compression.distill.alpha"),
        ("compression.max_acc_drop=-0.1", "compression.max_acc_drop"),
        ("compression.max_ppl_increase=-0.01", "compression.max_ppl_increase"),
        ("compression.max_ppl_increase=nan", "compression.max_ppl_increase"),
        ("compression.max_ppl_increase=inf", "compression.max_ppl_increase"),
    ],
)
def test_bad_compression_values_name_their_key(override, key, tmp_path):
    cfg = compose_config("pipeline", [override], tmp_path)
    with pytest.raises(ConfigError) as err:
        validate(cfg, PipelineConfig)
    assert err.value.key == key


def test_pipeline_widens_the_mlp_only(tmp_path):
    mlp = validate(compose_config("pipeline", ["model=mlp"], tmp_path), PipelineConfig)
    assert mlp.model["hidden_dim"] == 512 and mlp.compression.max_acc_drop == 0.01
    assert validate(compose_config("pipeline", ["model=mlp", "model.hidden_dim=96"], tmp_path), PipelineConfig).model["hidden_dim"] == 96
    assert validate(compose_config("pipeline", ["model=cnn"], tmp_path), PipelineConfig).model["hidden_dim"] == 32
    assert validate(compose_config("train", ["model=mlp"], tmp_path)).model["hidden_dim"] == 128


@pytest.mark.parametrize("overrides", [[], ["source.run_id=abc", "source.checkpoint=x.ckpt"]])
def test_compress_needs_exactly_one_source(overrides, tmp_path):
    with pytest.raises(ConfigError, match="exactly one of source.run_id and source.checkpoint"):
        validate(compose_config("compress", overrides, tmp_path), CompressConfig)
