"""The arithmetic lab: generator, traces, step checker, tokenizer, bootstrapped checkpoint."""

from __future__ import annotations

import json
import random
from dataclasses import replace

import pytest

from curator.lab.config import LabConfig
from curator.lab.data import splits, write_splits
from curator.lab.problems import Bucket, format_solution, generate, make_problem, trace
from curator.lab.stepcheck import check_steps


def test_generator_is_deterministic_and_distinct():
    cfg = LabConfig()
    a, b = splits(cfg), splits(cfg)
    assert a == b
    assert len(a["train"]) == cfg.train_size and len(a["eval"]) == cfg.eval_size
    prompts = [p.prompt for s in a.values() for p in s]
    assert len(prompts) == len(set(prompts)), "train and eval share no problem and hold no copies"
    other = splits(replace(cfg, data_seed=1))
    assert other["train"] != a["train"]


def test_every_bucket_is_represented_in_proportion():
    cfg = LabConfig()
    train = splits(cfg)["train"]
    counts = {b.name: 0 for b in cfg.buckets}
    for p in train:
        counts[p.bucket] += 1
    total_w = sum(b.weight for b in cfg.buckets)
    for b in cfg.buckets:
        assert abs(counts[b.name] - cfg.train_size * b.weight / total_w) <= 1


@pytest.mark.parametrize("seed", range(5))
def test_trace_round_trip_matches_python_arithmetic(seed):
    rng = random.Random(seed)
    for bucket in LabConfig().buckets:
        p = make_problem(bucket, rng)
        expr = p.prompt.rstrip("=")
        assert int(p.answer) == eval(expr)  # noqa: S307 - digits and + - * ( ) only
        steps, value, _ = trace(expr)
        assert p.solution == format_solution(steps, value)
        assert p.solution.endswith("\\boxed{" + p.answer + "}")
        assert len(steps) == p.n_ops == expr.count("+") + expr.count("-") + expr.count("*")
        assert check_steps(p.prompt, p.solution).score == 5


def test_trace_order_follows_precedence_and_parentheses():
    assert trace("2+3*4")[0] == ["3*4=12", "2+12=14"]
    assert trace("(2+3)*4")[0] == ["2+3=5", "5*4=20"]
    assert trace("9-15*1")[0] == ["15*1=15", "9-15=-6"]


def test_carries_feature():
    assert make_problem(Bucket("x", "a+b", (1, 1)), random.Random(3)).carries in (0, 1)
    assert trace("999+1")[2] == 3 and trace("100+200")[2] == 0
    assert trace("1000-1")[2] == 3


def test_step_checker_on_hand_made_traces():
    prompt = "87+4*1="
    right = check_steps(prompt, "4*1=4;87+4=91;\\boxed{91}")
    assert right.score == 5 and right.chained and right.matches_problem
    wrong_middle = check_steps(prompt, "4*1=5;87+5=91;\\boxed{91}")  # right answer, wrong steps
    assert wrong_middle.final == 91 and wrong_middle.score <= 1 and wrong_middle.n_wrong == 2
    lucky = check_steps(prompt, "4*1=4;87+4=90;\\boxed{91}")  # answer does not follow from the steps
    assert not lucky.chained and lucky.score <= 2
    wrong_answer = check_steps(prompt, "4*1=4;87+4=92;\\boxed{92}")
    assert wrong_answer.score == 3 and wrong_answer.chained and wrong_answer.n_wrong == 1
    assert check_steps(prompt, "hello there").score == 0
    assert check_steps(prompt, "").score == 0
    assert check_steps(prompt, "\\boxed{91}").score == 0  # no reasoning at all
    ungrounded = check_steps(prompt, "4*1=4;86+5=91;\\boxed{91}")
    assert ungrounded.n_ungrounded == 2 and ungrounded.score < 5
    assert "not" in wrong_middle.rationale


def test_step_checker_rejects_non_lab_prompts():
    with pytest.raises((ValueError, IndexError)):
        check_steps("What is the capital of France?", "\\boxed{1}")


def test_generated_files_ingest_with_automatic_mapping(tmp_path, ws):
    from curator.data.ingest import IngestConfig, ingest

    paths = write_splits(replace(LabConfig(), train_size=40, eval_size=10), tmp_path)
    row = json.loads(paths["train"].read_text().splitlines()[0])
    assert set(row) >= {"prompt", "answer", "solution", "bucket"}
    s = ingest(ws, IngestConfig(source=str(paths["train"])))
    assert s.n_new == 40 and s.mapping["prompt_field"] == "prompt" and s.mapping["answer_field"] == "answer"
    assert s.mapping["solution_field"] == "solution"


def test_shipped_splits_are_what_the_generator_makes():
    from curator.pipeline import LAB_DATA

    for name, problems in splits(LabConfig()).items():
        lines = (LAB_DATA / f"{name}.jsonl").read_text().splitlines()
        assert [json.loads(line)["prompt"] for line in lines] == [p.prompt for p in problems]


def test_tokenizer_round_trip_and_auto_loading(tmp_path):
    from transformers import AutoTokenizer

    from curator.lab.tokenizer import build_tokenizer

    tok = build_tokenizer()
    tok.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    text = "12+(3*4)=;\\boxed{-7}"
    ids = loaded(text, add_special_tokens=False).input_ids
    assert len(ids) == len(text) - len("\\boxed{") + 1  # `\boxed{` is one token
    assert loaded.decode(ids) == text
    assert loaded("1+1=").input_ids[0] == loaded.bos_token_id
    assert loaded.padding_side == "left"


def test_tiny_bootstrap_is_deterministic_and_loads_with_auto_classes(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from curator.lab.bootstrap import bootstrap

    cfg = replace(LabConfig(), hidden_size=32, layers=1, heads=2, ffn_size=64, sft_steps=4, sft_batch=8,
                  threads=1)
    a = bootstrap(cfg, tmp_path / "a")
    b = bootstrap(cfg, tmp_path / "b")
    assert not a.reused and bootstrap(cfg, tmp_path / "a").reused
    ma = AutoModelForCausalLM.from_pretrained(tmp_path / "a")
    mb = AutoModelForCausalLM.from_pretrained(tmp_path / "b")
    for (n1, p1), (_, p2) in zip(ma.state_dict().items(), mb.state_dict().items()):
        assert torch.equal(p1, p2), n1
    tok = AutoTokenizer.from_pretrained(tmp_path / "a")
    out = ma(**tok(["1+1="], return_tensors="pt"))
    assert out.logits.shape[-1] == len(tok)
    assert not (tmp_path / "a.partial").exists()


def test_shipped_checkpoint_loads_with_auto_classes():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from curator.lab.bootstrap import is_complete
    from curator.pipeline import LAB_MODEL

    assert is_complete(LAB_MODEL, LabConfig()), "data/lab/model is stale: run `curator lab bootstrap`"
    model = AutoModelForCausalLM.from_pretrained(LAB_MODEL)
    tok = AutoTokenizer.from_pretrained(LAB_MODEL)
    assert model.config.model_type == "llama" and model.config.tie_word_embeddings
    from curator.trainers.sampling import sample

    out = sample(model, tok, ["2+3="], n=1, temperature=0.0)
    assert out[0][0].text == "2+3=5;\\boxed{5}"
