"""TextCorpusDataModule: a local text file (or folder of files) cut into blocks for language modelling."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

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


class BlockDataset(Dataset):
    """Contiguous, non-overlapping blocks of a token stream: input `block_size` tokens, target shifted by one."""

    def __init__(self, tokens: torch.Tensor, block_size: int):
        self.tokens = tokens
        self.block_size = block_size

    def __len__(self) -> int:
        return (len(self.tokens) - 1) // self.block_size

    def __getitem__(self, i: int):
        start = i * self.block_size
        chunk = self.tokens[start : start + self.block_size + 1]
        return chunk[:-1], chunk[1:]


class TextCorpusDataModule(TokenizedDataModule):
    """Next-token prediction over local text, tokenised once and cached.

    The text is split by position (first train, then val, then test), so no block of val/test text is
    seen in training. Batches are `(ids int64 [B, block_size], next ids int64 [B, block_size])`.

    Args:
        path: a text file, or a folder whose files matching `glob` are read in sorted order.
        glob: the files of a folder to read (ignored for a file).
        tokenizer: "char" or "word" (vocabulary built from the training part), or the path of a local
            Hugging Face tokenizer or model folder.
        block_size: tokens per training sample (the model's context length).
        max_vocab: vocabulary size of a trained char/word tokenizer (special tokens included).
        min_freq: symbols seen fewer times in the training part map to `<unk>`.
        lowercase: lower-case text before a char/word tokenizer splits it.
        batch_size: blocks per batch on each worker.
        val_fraction: share of the text (its end, before the test part) held out for validation.
        test_fraction: share of the text (its very end) held out for the test split.
        seed: unused by the split (it is positional); kept so every DataModule takes the run seed.
        num_loader_workers: DataLoader worker processes.
        cache_dir: where the tokenised corpus is cached (null: ~/.cache/orchestrator/tokens).
    """

    def __init__(
        self,
        path: str,
        glob: str = "**/*.txt",
        tokenizer: str = "char",
        block_size: int = 128,
        max_vocab: int = 20000,
        min_freq: int = 1,
        lowercase: bool = False,
        batch_size: int = 32,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        seed: int = 0,
        num_loader_workers: int = 0,
        cache_dir: str | None = None,
    ):
        super().__init__()
        if not path:
            raise SettingError("data.path", "is required (set data.path=/path/to/corpus.txt or a folder)")
        root = Path(path).expanduser().resolve()
        if root.is_dir():
            files = sorted(p for p in root.glob(glob) if p.is_file())
            if not files:
                raise SettingError("data.path", f"folder {root} has no files matching data.glob={glob!r}")
        elif root.is_file():
            files = [root]
        else:
            raise SettingError("data.path", f"does not exist: {root}")
        if sum(f.stat().st_size for f in files) == 0:
            raise SettingError("data.path", f"{root} is empty")
        for key, value in (("block_size", block_size), ("max_vocab", max_vocab), ("batch_size", batch_size)):
            if value <= 0:
                raise SettingError(f"data.{key}", f"must be a positive integer, got {value}")
        check_split_fractions(val_fraction, test_fraction)
        self.tokenizer_folder = check_tokenizer_spec(tokenizer)
        self.path, self.files = root, files
        self.tokenizer_spec = tokenizer
        self.block_size, self.max_vocab, self.min_freq, self.lowercase = block_size, max_vocab, min_freq, lowercase
        self.batch_size = batch_size
        self.val_fraction, self.test_fraction, self.seed = val_fraction, test_fraction, seed
        self.num_loader_workers = num_loader_workers
        self.cache = TokenCache(cache_dir)
        self._entry: dict[str, Any] | None = None
        self._tokenizer = None
        self.splits: dict[str, BlockDataset] = {}

    # -- tokenised corpus, built once --------------------------------------------------------------
    def encoded(self) -> dict[str, Any]:
        """The cached entry: the train/val/test token streams and (for char/word) the vocabulary."""
        if self._entry is None:
            settings = {
                "tokenizer": self.tokenizer_spec if self.tokenizer_folder is None else "hf",
                "max_vocab": self.max_vocab,
                "min_freq": self.min_freq,
                "lowercase": self.lowercase,
                "val_fraction": self.val_fraction,
                "test_fraction": self.test_fraction,
            }
            files = [*self.files, *(tokenizer_files(self.tokenizer_folder) if self.tokenizer_folder else [])]
            self._entry = self.cache.get_or_build("text-corpus", content_key(files, settings), self._build)
        self._check_block_size(self._entry)
        return self._entry

    def _read(self) -> str:
        parts = []
        for file in self.files:
            try:
                parts.append(file.read_text(encoding="utf-8"))
            except UnicodeDecodeError as err:
                raise SettingError("data.path", f"{file} is not UTF-8 text ({err.reason}); narrow data.glob") from err
        return "\n".join(parts)

    def _build(self) -> dict[str, Any]:
        text = self._read()
        if not text.strip():
            raise SettingError("data.path", f"{self.path} holds no text")
        val_start = int(len(text) * (1.0 - self.val_fraction - self.test_fraction))
        test_start = int(len(text) * (1.0 - self.test_fraction))
        parts = {"train": text[:val_start], "val": text[val_start:test_start], "test": text[test_start:]}
        entry: dict[str, Any] = {"vocab": []}
        if self.tokenizer_folder is None:
            tokenizer = VocabTokenizer.train([parts["train"]], self.tokenizer_spec, self.max_vocab, self.min_freq, self.lowercase)
            entry["vocab"] = tokenizer.vocab
        else:
            tokenizer = HFTokenizer(self.tokenizer_folder)
        for name, part in parts.items():
            entry[name] = torch.tensor(tokenizer.encode(part), dtype=torch.int64)
        return entry

    def _check_block_size(self, entry: dict[str, Any]) -> None:
        for name in ("train", "val", "test"):
            available = len(entry[name]) - 1
            if available < self.block_size:
                raise SettingError(
                    "data.block_size",
                    f"is larger than the {name} part of the corpus ({self.block_size} > {max(available, 0)} tokens after the split)",
                    "lower data.block_size or give more text",
                )

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.block_size,)

    # -- Lightning hooks ---------------------------------------------------------------------------
    def prepare_data(self) -> None:
        self.encoded()

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        entry = self.encoded()
        self.splits = {name: BlockDataset(entry[name], self.block_size) for name in ("train", "val", "test")}
