"""verl rollout dumps -> history.

The dump files are written the way verl writes them, as read in
volcengine/verl `verl/trainer/ppo/ray_trainer.py`, `_dump_generations`
(commit 00401103a8c8900774aba04b910de5b0af930b99): one `{step}.jsonl` per
step, one object per completion with `input` (the prompt decoded with special
tokens skipped: the chat template's words stay, `<|im_start|>` goes),
`output`, `gts`, `score`, `step`, then the keys `compute_score` returned
(`acc`, `pred`, and here `index`). Validation dumps add `reward` (= score);
the validation before training is step 0.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from curator.errors import CuratorError
from curator.importers.plain import resolve_prompts
from curator.importers.records import import_records, source_run_id
from curator.importers.verl import read_verl_dumps
from curator.store import utcnow

SYSTEM = "system\nPlease reason step by step, and put your final answer within \\boxed{}.\n"


def prompt(i: int) -> str:
    return f"Tom has {i} apples and buys {i + 3} more. How many apples does he have now?"


def templated(i: int) -> str:
    """What verl's `input` looks like for a Qwen chat template decoded with skip_special_tokens=True."""
    return f"{SYSTEM}user\n{prompt(i)}\nassistant\n"


def seed_examples(ws, n: int = 6) -> None:
    ws.write("examples", pd.DataFrame({
        "example_id": [str(i) for i in range(n)], "dataset": "apples", "row_index": list(range(n)),
        "prompt": [prompt(i) for i in range(n)], "answer": [str(2 * i + 3) for i in range(n)],
        "solution": None, "meta": "{}", "ingested_at": utcnow()}))


def line(step: int, i: int, k: int, *, index: bool = True, validation: bool = False) -> dict:
    correct = (k + i) % 2 == 0
    row = {"input": templated(i), "output": f"... so \\boxed{{{2 * i + 3 if correct else 0}}}",
           "gts": str(2 * i + 3), "score": 1.0 if correct else -1.0, "step": step,
           "acc": correct, "pred": str(2 * i + 3 if correct else 0)}
    if index:
        row["index"] = i
    if validation:
        row["reward"] = row["score"]
    return row


def write_step(folder: Path, step: int, rows: list[dict], extra_lines: list[str] = ()) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{step}.jsonl"
    path.write_text("\n".join([json.dumps(r, ensure_ascii=False) for r in rows] + list(extra_lines)) + "\n")
    return path


@pytest.fixture
def dumps(tmp_path: Path) -> Path:
    d = tmp_path / "rollouts"
    # step 1: prompts 0-3, 4 samples each, every row with the index compute_score returned
    write_step(d, 1, [line(1, i, k) for i in range(4) for k in range(4)])
    # step 2: prompt 2's rows lack the index (matched through the chat template), plus two bad lines
    write_step(d, 2, [line(2, i, k, index=i != 2) for i in range(4) for k in range(4)],
               extra_lines=['{"input": "truncated', json.dumps({"input": templated(1), "output": "x", "step": 2})])
    # step 3: dynamic sampling kept only prompts 0 and 3
    write_step(d, 3, [line(3, i, k) for i in (0, 3) for k in range(4)])
    # validation before training, dumped into the same folder by mistake
    write_step(d, 0, [line(0, i, k, validation=True) for i in range(4) for k in range(2)])
    return d


def test_dumps_become_history_by_index_and_by_templated_prompt(ws, dumps):
    seed_examples(ws)
    examples = ws.df("SELECT example_id, prompt FROM examples")
    records, warnings = read_verl_dumps(dumps, index_key="index", examples=examples)
    text = "\n".join(warnings)
    assert len(records) == 16 + 16 + 8  # step 0 skipped, two bad lines skipped
    assert "0.jsonl" in text and "validation" in text
    assert "2.jsonl:17: not valid JSON" in text and "2.jsonl:18: missing score" in text
    assert "16 of 40 rows" not in text and "4 of 40 rows have no 'index'" in text
    assert "step 3 has 2 prompts, the median step has 4" in text and "not solved" in text
    assert records.attrs["mapping"]["correct"] == "acc"
    # the rows without an index found their example through the chat template around the prompt
    assert set(records.loc[records.step == 2, "example_id"]) == {"0", "1", "2", "3"}

    s = import_records(ws, records, importer="verl", source=str(dumps), fingerprint="verl|" + str(dumps),
                       warnings=warnings)
    assert (s.n_records, s.n_matched, s.unmatched, s.n_steps, s.n_examples) == (40, 40, 0, 3, 4)
    hist = ws.df("SELECT step, example_id, n, n_correct, kept FROM history WHERE run_id = ? ORDER BY 1, 2",
                 [s.run_id])
    assert len(hist) == 4 + 4 + 2  # no invented rows for the prompts step 3 filtered out
    assert hist.loc[hist.step == 3, "example_id"].tolist() == ["0", "3"]
    assert (hist.n == 4).all() and (hist.n_correct == 2).all() and hist.kept.all()

    again = import_records(ws, records, importer="verl", source=str(dumps), fingerprint="verl|" + str(dumps))
    assert again.replaced and again.run_id == s.run_id == source_run_id("verl", "verl|" + str(dumps))
    assert ws.sql("SELECT count(*) FROM history WHERE run_id = ?", [s.run_id]).fetchone()[0] == 10


def test_without_an_index_every_row_matches_by_prompt_and_score_decides_without_acc(ws, tmp_path):
    seed_examples(ws)
    d = tmp_path / "noindex"
    rows = [line(5, i, k, index=False) for i in range(3) for k in range(2)]
    for r in rows:
        del r["acc"], r["pred"]
    write_step(d, 5, rows)
    records, warnings = read_verl_dumps(d, threshold=0.0, examples=ws.df("SELECT example_id, prompt FROM examples"))
    assert warnings == []
    assert records.attrs["mapping"]["correct"] == "score > 0.0"
    assert records.correct.tolist() == [r["score"] > 0 for r in rows]
    assert sorted(set(records.example_id)) == ["0", "1", "2"]


def test_ambiguous_and_nested_prompts(ws, tmp_path):
    ws.write("examples", pd.DataFrame({
        "example_id": ["a", "b", "c", "d"], "dataset": "t", "row_index": [0, 1, 2, 3],
        "prompt": ["What is 12 times 12?", "What is 12 times 12? Explain each step.", "Add 7 and 8.",
                   "Then subtract 3 from the result."],
        "answer": ["144", "144", "15", "12"], "solution": None, "meta": "{}", "ingested_at": utcnow()}))
    d = tmp_path / "amb"
    write_step(d, 1, [
        # contains a and b; b contains a, so b is the match
        {"input": "user\nWhat is 12 times 12? Explain each step.\nassistant\n", "output": "144", "score": 1.0,
         "step": 1},
        # contains c and d, neither inside the other: ambiguous
        {"input": "user\nAdd 7 and 8. Then subtract 3 from the result.\nassistant\n", "output": "12",
         "score": 1.0, "step": 1},
    ])
    records, warnings = read_verl_dumps(d, examples=ws.df("SELECT example_id, prompt FROM examples"))
    assert records.example_id.tolist()[0] == "b" and records.example_id.isna().tolist()[1]
    assert any("1 records (1 distinct prompts) contain more than one workspace prompt" in w for w in warnings)
    s = import_records(ws, records, importer="verl", source=str(d), fingerprint=str(d), warnings=warnings)
    assert (s.n_matched, s.unmatched) == (1, 1)


def test_prompt_template_is_stripped_with_or_without_special_tokens(ws):
    seed_examples(ws, 3)
    examples = ws.df("SELECT example_id, prompt FROM examples")
    qwen = "<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n"
    records = pd.DataFrame({"step": [1, 1], "example_id": [None, None], "correct": [True, False],
                            "prompt": [qwen.format(prompt=prompt(1)), f"user\n{prompt(2)}\nassistant\n"]})
    out, warnings = resolve_prompts(records, examples, prompt_template=qwen)
    assert out.example_id.tolist() == ["1", "2"] and warnings == []
    assert out.attrs["prompt_matching"]["template"] == 2
    with pytest.raises(CuratorError, match=r"\{prompt\}"):
        resolve_prompts(records, examples, prompt_template="no placeholder")


def test_validation_folder_is_refused_unless_asked(tmp_path):
    d = tmp_path / "val"
    write_step(d, 0, [line(0, i, 0, validation=True) for i in range(3)])
    write_step(d, 10, [line(10, i, 0, validation=True) for i in range(3)])
    with pytest.raises(CuratorError, match="validation_data_dir"):
        read_verl_dumps(d)
    records, warnings = read_verl_dumps(d, include_validation=True)
    assert len(records) == 6 and sorted(set(records.step)) == [0, 10]


def test_extra_reward_keys_give_the_id_and_the_verdict(tmp_path):
    d = tmp_path / "extra"
    write_step(d, 4, [{"input": templated(0), "output": "o", "gts": "3", "score": 0.2, "step": 4,
                       "my_index": 7.0, "is_right": "true", "format_ok": 1},
                      {"input": templated(1), "output": "o", "gts": "5", "score": 0.9, "step": 4,
                       "my_index": "8", "is_right": False, "format_ok": 0}])
    records, warnings = read_verl_dumps(d, index_key="my_index", correct_key="is_right")
    assert records.example_id.tolist() == ["7", "8"] and records.correct.tolist() == [True, False]
    assert records.reward.tolist() == [0.2, 0.9] and records.completion.tolist() == ["o", "o"]
    assert warnings == []
