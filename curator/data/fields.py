"""Map a source's fields onto curator's (prompt, answer, solution, id).

`detect_mapping` looks at the field names of a sample of records and picks the
common RLVR schemas automatically; explicit `--prompt-field/--answer-field/
--id-field` override it. `extract` applies a mapping to one record and returns
either the normalized fields or the reasons the row cannot be used.

Schemas recognized (first match wins):
- verl parquet: `prompt` (chat messages, the last one's content) + `reward_model.ground_truth`
- MATH / MATH-500 / DeepScaleR: `problem` + `answer`, else the last `\\boxed{}` of `solution`
- GSM8K: `question` + `answer`, the gold being the text after `####`
- TRL conversational: `prompt` as chat messages + an answer-like column
- anything else with one prompt-like and one answer-like column
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from curator.data.answers import gsm8k_final, last_boxed
from curator.errors import CuratorError

PROMPT_FIELDS = ("problem", "question", "prompt", "query", "input", "instruction")
ANSWER_FIELDS = (
    "answer", "final_answer", "ground_truth", "gold", "target", "expected_answer", "label",
    "solution",
)
SOLUTION_FIELDS = ("solution", "trace", "reasoning", "rationale")


@dataclass(frozen=True)
class FieldMapping:
    """How one dataset's records become examples. Stored in `datasets.mapping`."""

    schema: str  # verl | math | gsm8k | trl | generic | explicit
    prompt_field: str  # dotted path into the record
    answer_field: str  # dotted path into the record
    solution_field: str | None = None
    id_field: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))


@dataclass(frozen=True)
class Extracted:
    prompt: str
    answer: str
    solution: str | None
    source_id: str | None
    meta: dict[str, Any]


def get_path(record: dict[str, Any], path: str) -> tuple[bool, Any]:
    """Follow a dotted path (`reward_model.ground_truth`); return (found, value)."""
    value: Any = record
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        else:
            return False, None
    return True, value


def detect_mapping(
    records: list[dict[str, Any]],
    prompt_field: str | None = None,
    answer_field: str | None = None,
    id_field: str | None = None,
    solution_field: str | None = None,
) -> FieldMapping:
    """Choose the field mapping from a sample of records and the user's overrides."""
    keys: set[str] = set()
    for r in records:
        keys.update(r)
    schema, prompt, answer, solution = _auto(records, keys)
    if prompt_field or answer_field:
        schema = "explicit"
        prompt = prompt_field or prompt
        answer = answer_field or answer
        if answer_field and solution == answer_field:
            solution = None
    if solution_field:
        solution = solution_field
    if prompt is None or answer is None:
        missing = "prompt" if prompt is None else "answer"
        raise CuratorError(
            f"cannot tell which field holds the {missing}; fields seen: {', '.join(sorted(keys)) or 'none'}; "
            f"pass --{missing}-field NAME (dotted paths such as reward_model.ground_truth work)"
        )
    for name, path in (("prompt", prompt), ("answer", answer)):
        if records and not any(get_path(r, path)[0] for r in records):
            raise CuratorError(
                f"--{name}-field {path!r} is in none of the first {len(records)} rows; "
                f"fields seen: {', '.join(sorted(keys))}"
            )
    return FieldMapping(schema, prompt, answer, solution, id_field)


def _auto(records: list[dict[str, Any]], keys: set[str]) -> tuple[str, str | None, str | None, str | None]:
    if "prompt" in keys and "reward_model" in keys:
        return "verl", "prompt", "reward_model.ground_truth", None
    if "problem" in keys and ("answer" in keys or "solution" in keys):
        answer = "answer" if "answer" in keys else "solution"
        return "math", "problem", answer, "solution" if "solution" in keys else None
    if "question" in keys and "answer" in keys:
        sample = [r.get("answer") for r in records if isinstance(r.get("answer"), str)]
        if sample and sum("####" in a for a in sample) >= len(sample) / 2:
            return "gsm8k", "question", "answer", "answer"
    prompt = next((f for f in PROMPT_FIELDS if f in keys), None)
    answer = next((f for f in ANSWER_FIELDS if f in keys and f != prompt), None)
    solution = next((f for f in SOLUTION_FIELDS if f in keys and f != answer), None)
    if answer == "solution":
        solution = "solution"
    chat = prompt is not None and any(isinstance(r.get(prompt), list) for r in records)
    schema = "trl" if chat else "generic"
    return schema, prompt, answer, solution


def extract(record: dict[str, Any], m: FieldMapping) -> Extracted | list[str]:
    """Apply the mapping to one record: the extracted fields, or the reasons it fails."""
    reasons: list[str] = []
    prompt = _prompt_text(record, m.prompt_field, reasons)
    answer = _answer_text(record, m.answer_field, reasons)
    solution = None
    if m.solution_field:
        found, value = get_path(record, m.solution_field)
        if found and isinstance(value, str):
            solution = value
    source_id = None
    if m.id_field:
        found, value = get_path(record, m.id_field)
        if not found or value is None or value == "":
            reasons.append(f"missing id: field {m.id_field!r} is absent or empty")
        elif isinstance(value, (dict, list)):
            reasons.append(f"wrong type: id field {m.id_field!r} is a {type(value).__name__}")
        else:
            source_id = str(value)
    if reasons:
        return reasons
    top = {m.prompt_field.split(".")[0], m.answer_field.split(".")[0]}
    meta = {k: v for k, v in record.items() if k not in top}
    return Extracted(prompt, answer, solution, source_id, meta)  # type: ignore[arg-type]


def _prompt_text(record: dict[str, Any], path: str, reasons: list[str]) -> str | None:
    found, value = get_path(record, path)
    if not found or value is None:
        reasons.append(f"missing field: no prompt field {path!r}")
        return None
    if isinstance(value, list):  # chat messages: the last message is the problem
        if value and isinstance(value[-1], dict) and isinstance(value[-1].get("content"), str):
            return value[-1]["content"].strip()
        reasons.append(f"wrong type: prompt field {path!r} is a list but not chat messages with 'content'")
        return None
    if not isinstance(value, str):
        reasons.append(f"wrong type: prompt field {path!r} is a {type(value).__name__}, expected text")
        return None
    return value.strip()


def _answer_text(record: dict[str, Any], path: str, reasons: list[str]) -> str | None:
    found, value = get_path(record, path)
    if not found or value is None:
        reasons.append(f"missing field: no answer field {path!r}")
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        if isinstance(value, list) and len(value) == 1 and isinstance(value[0], (str, int, float)):
            value = value[0]  # some datasets wrap the single gold answer in a list
        else:
            reasons.append(
                f"wrong type: answer field {path!r} is a {type(value).__name__}, expected text or a number"
            )
            return None
    text = str(value).strip()
    if "####" in text:
        final = gsm8k_final(text)
        if final is None:
            reasons.append(f"no answer: answer field {path!r} has '####' but nothing after it")
        return final
    if "\\boxed" in text or "\\fbox" in text:
        boxed = last_boxed(text)
        if boxed is not None and (len(text) > len(boxed) + 12):
            return boxed  # a worked solution: the gold is its last \boxed{}
    if path.split(".")[-1] in SOLUTION_FIELDS:
        boxed = last_boxed(text)
        if boxed is None:
            reasons.append(f"no answer: field {path!r} is a solution with no \\boxed{{}} answer")
        return boxed
    return text
