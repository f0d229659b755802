"""TextClassificationDataModule: a local CSV, JSONL or Parquet table with a text and a label column."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import torch
from sklearn.model_selection import train_test_split
from torch.utils.data import TensorDataset

from trainers.data.arrays import check_split_fractions
from trainers.data.token_cache import TokenCache, content_key
from trainers.data.tokenized import TokenizedDataModule
from trainers.data.tokenizers import (
    HFTokenizer,
    VocabTokenizer,
    check_tokenizer_spec,
    tokenizer_files,
)
from trainers.errors import SettingError

PARQUET_SUFFIXES = (".parquet", ".pq")
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")


def table_columns(path: Path) -> list[str]:
    """Column names only, reading no more than the header (or the first JSON line)."""
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        return list(pq.read_schema(path).names)
    if suffix in JSONL_SUFFIXES:
        with open(path, encoding="utf-8") as handle:
            first = next((line for line in handle if line.strip()), "")
        return list(json.loads(first)) if first else []
    return list(pd.read_csv(path, nrows=0, sep="\t" if suffix == ".tsv" else ",").columns)


def read_table(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        return pd.read_parquet(path)
    if suffix in JSONL_SUFFIXES:
        return pd.read_json(path, lines=True)
    return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")


class TextClassificationDataModule(TokenizedDataModule):
    """Texts and class labels, split train/val/test (stratified by seed), tokenised once and cached.

    Batches are `(token ids int64 [B, max_length], labels int64 [B])`; padding uses `pad_token_id`.
    Labels may be strings or integers; they map to 0..K-1 in sorted order.

    Args:
        path: a .csv/.tsv, .jsonl/.json (one object per line) or .parquet file.
        text_column: the column holding the text.
        label_column: the column holding the class label.
        tokenizer: "word" or "char" (vocabulary built from the training split), or the path of a local
            Hugging Face tokenizer or model folder.
        max_length: tokens per sample (longer texts are truncated, shorter ones padded).
        max_vocab: vocabulary size of a trained word/char tokenizer (special tokens included).
        min_freq: symbols seen fewer times in the training split map to `<unk>`.
        lowercase: lower-case text before a word/char tokenizer splits it.
        batch_size: samples per batch on each worker.
        val_fraction: share of samples held out for validation.
        test_fraction: share of samples held out for the test split.
        seed: seed of the split.
        num_loader_workers: DataLoader worker processes.
        cache_dir: where tokenised splits are cached (null: ~/.cache/orchestrator/tokens).
    """

    def __init__(
        self,
        path: str,
        text_column: str = "text",
        label_column: str = "label",
        tokenizer: str = "word",
        max_length: int = 64,
        max_vocab: int = 20000,
        min_freq: int = 1,
        lowercase: bool = True,
        batch_size: int = 32,
        val_fraction: float = 0.15,
        test_fraction: float = 0.2,
        seed: int = 0,
        num_loader_workers: int = 0,
        cache_dir: str | None = None,
    ):
        super().__init__()
        if not path:
            raise SettingError("data.path", "is required (set data.path=/path/to/texts.csv)")
        file = Path(path).expanduser().resolve()
        if not file.is_file():
            raise SettingError("data.path", f"does not exist or is not a file: {file}")
        if file.stat().st_size == 0:
            raise SettingError("data.path", f"{file} is empty")
        columns = table_columns(file)
        for key, column in (("text_column", text_column), ("label_column", label_column)):
            if column not in columns:
                raise SettingError(f"data.{key}", f"{column!r} is not a column of {file.name}; its columns are {columns}")
        for key, value in (("max_length", max_length), ("max_vocab", max_vocab), ("batch_size", batch_size)):
            if value <= 0:
                raise SettingError(f"data.{key}", f"must be a positive integer, got {value}")
        check_split_fractions(val_fraction, test_fraction)
        self.tokenizer_folder = check_tokenizer_spec(tokenizer)
        self.path = file
        self.text_column, self.label_column = text_column, label_column
        self.tokenizer_spec = tokenizer
        self.max_length, self.max_vocab, self.min_freq, self.lowercase = max_length, max_vocab, min_freq, lowercase
        self.batch_size = batch_size
        self.val_fraction, self.test_fraction, self.seed = val_fraction, test_fraction, seed
        self.num_loader_workers = num_loader_workers
        self.cache = TokenCache(cache_dir)
        self._entry: dict[str, Any] | None = None
        self._tokenizer = None
        self.splits: dict[str, TensorDataset] = {}

    # -- tokenised data, built once ----------------------------------------------------------------
    def _settings(self) -> dict[str, Any]:
        return {
            "text_column": self.text_column,
            "label_column": self.label_column,
            "tokenizer": self.tokenizer_spec if self.tokenizer_folder is None else "hf",
            "max_length": self.max_length,
            "max_vocab": self.max_vocab,
            "min_freq": self.min_freq,
            "lowercase": self.lowercase,
            "val_fraction": self.val_fraction,
            "test_fraction": self.test_fraction,
            "seed": self.seed,
        }

    def encoded(self) -> dict[str, Any]:
        """The cached entry: ids, labels, split indices, classes and (for word/char) the vocabulary."""
        if self._entry is None:
            files = [self.path, *(tokenizer_files(self.tokenizer_folder) if self.tokenizer_folder else [])]
            self._entry = self.cache.get_or_build("text-classification", content_key(files, self._settings()), self._build)
        return self._entry

    def _build(self) -> dict[str, Any]:
        frame = read_table(self.path)
        if frame.empty:
            raise SettingError("data.path", f"{self.path} has no rows")
        if frame[self.label_column].isna().any():
            raise SettingError("data.label_column", f"{self.label_column!r} has empty values in {self.path.name}")
        texts = frame[self.text_column].fillna("").astype(str).tolist()
        classes = sorted(frame[self.label_column].unique().tolist())
        if len(classes) < 2:
            raise SettingError("data.label_column", f"{self.label_column!r} needs at least 2 classes, found {classes}")
        index = {c: i for i, c in enumerate(classes)}
        labels = frame[self.label_column].map(index).to_numpy(dtype=np.int64)
        try:
            train_idx, test_idx = train_test_split(
                np.arange(len(labels)), test_size=self.test_fraction, stratify=labels, random_state=self.seed
            )
            train_idx, val_idx = train_test_split(
                train_idx,
                test_size=self.val_fraction / (1.0 - self.test_fraction),
                stratify=labels[train_idx],
                random_state=self.seed,
            )
        except ValueError as err:
            raise SettingError("data.path", f"{self.path.name}: too few samples per class for the split ({err})") from err
        entry: dict[str, Any] = {"classes": [str(c) for c in classes], "vocab": []}
        if self.tokenizer_folder is None:
            tokenizer = VocabTokenizer.train(
                (texts[i] for i in train_idx), self.tokenizer_spec, self.max_vocab, self.min_freq, self.lowercase
            )
            rows = [tokenizer.encode(t)[: self.max_length] for t in texts]
            ids = torch.full((len(rows), self.max_length), tokenizer.pad_token_id, dtype=torch.int64)
            for i, row in enumerate(rows):
                ids[i, : len(row)] = torch.tensor(row, dtype=torch.int64)
            entry["vocab"] = tokenizer.vocab
        else:
            ids = torch.tensor(HFTokenizer(self.tokenizer_folder).encode_batch(texts, self.max_length), dtype=torch.int64)
        entry.update(
            ids=ids,
            labels=torch.tensor(labels, dtype=torch.int64),
            train=torch.from_numpy(np.sort(train_idx)),
            val=torch.from_numpy(np.sort(val_idx)),
            test=torch.from_numpy(np.sort(test_idx)),
        )
        return entry

    @property
    def num_classes(self) -> int:
        return len(self.encoded()["classes"])

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.max_length,)

    # -- Lightning hooks ---------------------------------------------------------------------------
    def prepare_data(self) -> None:
        self.encoded()

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        entry = self.encoded()
        for name in ("train", "val", "test"):
            idx = entry[name]
            self.splits[name] = TensorDataset(entry["ids"][idx], entry["labels"][idx])
