"""Row validation of normalized examples, as a great-expectations suite.

The suite runs over one DataFrame of normalized rows plus a few derived
columns (does the answer parse, is the row a copy, how many answers does its
prompt have). Every failed expectation names its rows; each row's reasons are
worded for a person, with the value that failed and what to do. great-
expectations is imported here only, so commands that do not validate never
pay its import time.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Callable

import pandas as pd


@dataclass(frozen=True)
class Check:
    name: str  # short category, counted in the summary
    expectation: str  # great-expectations class name
    column: str
    kwargs: dict
    message: Callable[[pd.Series], str]  # the reason for one failing row


def _preview(text: str, n: int = 60) -> str:
    text = str(text)
    return repr(text) if len(text) <= n else repr(text[:n]) + f"… ({len(text)} chars)"


def checks(max_prompt_chars: int, max_answer_chars: int) -> list[Check]:
    """The suite, in the order reasons are reported."""
    return [
        Check("empty prompt", "ExpectColumnValueLengthsToBeBetween", "prompt", {"min_value": 1},
              lambda r: "empty prompt: the prompt is empty or whitespace"),
        Check("prompt too long", "ExpectColumnValueLengthsToBeBetween", "prompt",
              {"max_value": max_prompt_chars},
              lambda r: f"prompt too long: {len(r.prompt)} chars > {max_prompt_chars} "
                        "(raise --max-prompt-chars to keep it)"),
        Check("empty answer", "ExpectColumnValueLengthsToBeBetween", "answer", {"min_value": 1},
              lambda r: "empty answer: the gold answer is empty"),
        Check("answer too long", "ExpectColumnValueLengthsToBeBetween", "answer",
              {"max_value": max_answer_chars},
              lambda r: f"answer too long: {len(r.answer)} chars > {max_answer_chars}"),
        Check("unparseable answer", "ExpectColumnValuesToBeInSet", "answer_parses",
              {"value_set": [True]},
              lambda r: f"unparseable answer: math-verify cannot read {_preview(r.answer)} as a "
                        f"gold answer ({r.answer_detail})"),
        Check("duplicate", "ExpectColumnValuesToBeNull", "copy_of", {},
              lambda r: f"duplicate: same prompt and answer as row {int(r.copy_of)}"),
        Check("id not unique", "ExpectColumnValuesToBeUnique", "unique_id", {},
              lambda r: f"id not unique: id {r.example_id!r} is used by rows "
                        f"{r.id_rows} with different content"),
        Check("conflicting answers", "ExpectColumnValuesToBeBetween", "answers_for_prompt",
              {"max_value": 1},
              lambda r: f"conflicting answers: the same prompt appears at rows {r.prompt_rows} "
                        f"with {int(r.answers_for_prompt)} different answers"),
    ]


def add_derived_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns the suite checks: copies, id reuse, answers per prompt (pure, no I/O)."""
    f = frame.copy()
    key = f.prompt_key + "\x1f" + f.answer_key
    first = f.groupby(key, sort=False).row_index.transform("min")
    f["copy_of"] = first.where(first != f.row_index)
    # ids must be unique among distinct rows (copies are reported as duplicates instead)
    f["unique_id"] = f.example_id.where(f.copy_of.isna())
    distinct = f[f.copy_of.isna()]
    id_rows = distinct.groupby("example_id").row_index.agg(lambda s: sorted(s.tolist()))
    f["id_rows"] = f.example_id.map(id_rows)
    answers = distinct.groupby("prompt_key").answer_key.nunique()
    f["answers_for_prompt"] = f.prompt_key.map(answers).astype("Int64")
    prompt_rows = distinct.groupby("prompt_key").row_index.agg(lambda s: sorted(s.tolist())[:10])
    f["prompt_rows"] = f.prompt_key.map(prompt_rows)
    return f


def validate(frame: pd.DataFrame, max_prompt_chars: int, max_answer_chars: int) -> dict[int, list[str]]:
    """Run the suite; return {row_index: [reason, ...]} for every failing row."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")  # never phone home
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    f = add_derived_columns(frame)
    suite_checks = checks(max_prompt_chars, max_answer_chars)

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    asset = ctx.data_sources.add_pandas("curator").add_dataframe_asset("examples")
    batch = asset.add_batch_definition_whole_dataframe("all").get_batch(
        batch_parameters={"dataframe": f.drop(columns=["id_rows", "prompt_rows"])}
    )
    suite = ctx.suites.add(gx.ExpectationSuite(name="curator_ingest"))
    for i, c in enumerate(suite_checks):
        cls = getattr(gx.expectations, c.expectation)
        suite.add_expectation(cls(column=c.column, meta={"check": i}, **c.kwargs))
    result = batch.validate(
        suite,
        result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["row_index"]},
    )

    by_row = f.set_index("row_index", drop=False)
    reasons: dict[int, list[tuple[int, str]]] = {}
    for r in result.results:
        if r.success:
            continue
        i = r.expectation_config.meta["check"]
        if r.exception_info and r.exception_info.get("raised_exception"):
            raise RuntimeError(
                f"validation check {suite_checks[i].name!r} could not run: "
                f"{r.exception_info.get('exception_message')}"
            )
        for hit in r.result.get("unexpected_index_list") or []:
            row = int(hit["row_index"])
            reasons.setdefault(row, []).append((i, suite_checks[i].message(by_row.loc[row])))
    return {row: [msg for _, msg in sorted(rs)] for row, rs in reasons.items()}
