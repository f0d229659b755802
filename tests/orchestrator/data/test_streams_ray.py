"""The streamed pipeline on a real local Ray: its one aggregate pass finds what pandas finds on the whole
frame (rows per split, classes, the training split's feature means and standard deviations), and the
ready tensors it streams are those rows standardised with them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from orchestrator.data.streams import SPLITS, split_of


@pytest.mark.ray
def test_statistics_and_tensors_match_pandas_on_the_whole_frame(ray_cluster, tmp_path):
    from orchestrator.data.module import StreamingDataModule

    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"a": rng.normal(5, 2, 3000), "b": rng.integers(0, 100, 3000), "label": rng.choice(["cat", "dog", "eel"], 3000)})
    for i in range(3):  # three files, so blocks and tasks differ from one frame
        frame.iloc[i * 1000 : (i + 1) * 1000].to_parquet(tmp_path / f"part-{i}.parquet", index=False)
    datamodule = StreamingDataModule(path=str(tmp_path), label_column="label", seed=11, batch_size=500, shuffle_buffer_rows=0)

    stats = datamodule.stats
    split = split_of(frame, ["a", "b", "label"], 11, 0.15, 0.2)
    assert stats["rows"] == {name: int((split == code).sum()) for name, code in SPLITS.items()}
    assert stats["classes"] == ["cat", "dog", "eel"] and sum(stats["class_counts"]) == 3000
    train = frame[split == SPLITS["train"]]
    np.testing.assert_allclose(stats["mean"], train[["a", "b"]].mean().to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(stats["std"], train[["a", "b"]].std(ddof=0).to_numpy(), rtol=1e-9)
    assert datamodule.num_classes == 3 and datamodule.input_shape == (2,)

    xs, ys = zip(*datamodule.test_dataloader(), strict=True)
    x, y = np.concatenate([t.numpy() for t in xs]), np.concatenate([t.numpy() for t in ys])
    test = frame[split == SPLITS["test"]]
    expected = ((test[["a", "b"]].to_numpy() - stats["mean"]) / stats["std"]).astype(np.float32)
    order = np.lexsort(x.T[::-1]), np.lexsort(expected.T[::-1])  # the stream's row order is Ray Data's
    np.testing.assert_allclose(x[order[0]], expected[order[1]], rtol=1e-5, atol=1e-5)
    assert (y[order[0]] == test["label"].map({"cat": 0, "dog": 1, "eel": 2}).to_numpy()[order[1]]).all()
