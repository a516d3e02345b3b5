"""Writers for the exported rows, one function per format; every one keeps the row order.

- `hf`: a `datasets.DatasetDict` saved with `save_to_disk`
- `parquet`, `jsonl`: one file per split
- `verl`: verl's training parquet (`data_source`, `prompt` as chat messages, `ability`,
  `reward_model.ground_truth`, `extra_info.index`)
- `trl`: TRL's conversational `prompt` format with the answer beside it
- `hub`: the folder pushed to the Hub: `data/<split>-00000-of-00001.parquet` and the card
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

FORMATS = ("hf", "parquet", "jsonl", "verl", "trl")
CORE = ["example_id", "prompt", "answer", "solution", "dataset"]


def _plain(rows: pd.DataFrame) -> pd.DataFrame:
    return rows.reset_index(drop=True)


def write(rows: pd.DataFrame, out: Path, fmt: str, split: str) -> Path:
    rows = _plain(rows)
    if fmt == "hf":
        import datasets

        datasets.disable_progress_bars()  # curator draws its own progress
        path = out / "hf"
        datasets.DatasetDict({split: datasets.Dataset.from_pandas(rows, preserve_index=False)}).save_to_disk(str(path))
        return path
    if fmt == "parquet":
        path = out / "parquet" / f"{split}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        rows.to_parquet(path, index=False)
        return path
    if fmt == "jsonl":
        path = out / "jsonl" / f"{split}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        rows.to_json(path, orient="records", lines=True, force_ascii=False)
        return path
    if fmt == "verl":
        path = out / "verl" / f"{split}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        extra_cols = [c for c in rows.columns if c not in ("prompt", "answer", "dataset")]
        verl = pd.DataFrame({
            "data_source": rows.dataset,
            "prompt": [[{"role": "user", "content": p}] for p in rows.prompt],
            "ability": "math",
            "reward_model": [{"style": "rule", "ground_truth": a} for a in rows.answer],
            "extra_info": [dict({"index": i, "split": split}, **{c: _jsonable(rows.at[i, c]) for c in extra_cols})
                           for i in range(len(rows))],
        })
        verl.to_parquet(path, index=False)
        return path
    if fmt == "trl":
        path = out / "trl" / f"{split}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        trl = rows.assign(prompt=[[{"role": "user", "content": p}] for p in rows.prompt])
        trl.to_json(path, orient="records", lines=True, force_ascii=False)
        return path
    raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")


def write_hub_folder(rows: pd.DataFrame, out: Path, split: str, card: str) -> Path:
    folder = out / "hub"
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    _plain(rows).to_parquet(data / f"{split}-00000-of-00001.parquet", index=False)
    (folder / "README.md").write_text(card)
    return folder


def _jsonable(v):
    if isinstance(v, float) and pd.isna(v):
        return None
    if hasattr(v, "item"):
        return v.item()
    return v
