"""GRPO: the pure pieces against straightforward formulas, then a real tiny model for a few steps."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from itertools import combinations

import pytest
import torch

from curator.trainers.evaluate import pass_at_k
from curator.trainers.grpo import (
    EpochSampler, Example, GRPOConfig, GRPOTrainer, NoSignalError, clipped_token_loss, group_advantages, k3_kl,
)
from curator.pipeline import LAB_DATA, LAB_MODEL


def test_group_advantages_match_the_formula():
    r = torch.tensor([[1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 0.0]])
    adv = group_advantages(r)
    for g in range(2):
        vals = r[g].tolist()
        mean = sum(vals) / 4
        std = math.sqrt(sum((v - mean) ** 2 for v in vals) / 3)  # unbiased
        for j in range(4):
            assert adv[g, j].item() == pytest.approx((vals[j] - mean) / (std + 1e-6))
    assert torch.all(group_advantages(torch.ones(1, 4)) == 0)


def test_clipped_loss_and_clip_flags():
    logp = torch.log(torch.tensor([[1.5, 0.5, 1.0]]))  # ratios 1.5, 0.5, 1.0 against old = 0
    old = torch.zeros(1, 3)
    loss, clipped = clipped_token_loss(logp, old, torch.tensor([1.0]), 0.2, 0.28)
    assert loss.tolist()[0] == pytest.approx([-1.28, -0.5, -1.0])  # min(r*A, clip(r)*A) with A = +1
    assert clipped.tolist() == [[True, False, False]]
    loss, clipped = clipped_token_loss(logp, old, torch.tensor([-1.0]), 0.2, 0.28)
    assert loss.tolist()[0] == pytest.approx([1.5, 0.8, 1.0])
    assert clipped.tolist() == [[False, True, False]]


def test_k3_is_zero_at_equality_and_positive_otherwise():
    a = torch.tensor([-1.0, -2.0])
    assert torch.all(k3_kl(a, a) == 0)
    assert torch.all(k3_kl(a, a + 0.3) > 0)


@pytest.mark.parametrize("n,c,k", [(5, 0, 1), (5, 2, 1), (5, 2, 2), (6, 3, 4), (8, 8, 3), (4, 1, 4)])
def test_pass_at_k_equals_enumeration(n, c, k):
    outcomes = [1] * c + [0] * (n - c)
    subsets = list(combinations(range(n), k))
    expected = sum(any(outcomes[i] for i in s) for s in subsets) / len(subsets)
    assert pass_at_k(n, c, k) == pytest.approx(expected)


def test_epoch_sampler_covers_each_epoch_and_restores():
    s = EpochSampler(10, seed=3)
    first = s.draw(10)
    assert sorted(first) == list(range(10))
    s.draw(4)
    state = s.state()
    nxt = s.draw(9)
    t = EpochSampler(10, seed=3)
    t.load(state)
    assert t.draw(9) == nxt


@dataclass
class _O:
    status: str

    @property
    def reward(self):
        return 1.0 if self.status == "correct" else 0.0


def _lab(n=24):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(1)
    model = AutoModelForCausalLM.from_pretrained(LAB_MODEL)
    tok = AutoTokenizer.from_pretrained(LAB_MODEL)
    rows = [json.loads(line) for line in (LAB_DATA / "train.jsonl").read_text().splitlines()[:n]]
    return model, tok, [Example(str(i), r["prompt"], r["answer"]) for i, r in enumerate(rows)]


def test_real_tiny_model_trains_and_records_are_complete():
    from curator.verify import Verifier

    model, tok, examples = _lab()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    records = []
    with Verifier() as v:
        tr = GRPOTrainer(model, tok, examples, v.verify_batch,
                         GRPOConfig(steps=2, prompts_per_step=4, group_size=4, lr=1e-3, seed=5,
                                    keep_completions="correct"),
                         on_records=lambda kind, rows: records.append((kind, rows)), run_id="t")
        stats = [tr.step(), tr.step()]
    changed = [k for k, w in model.state_dict().items() if not torch.equal(w, before[k])]
    assert changed, "GRPO steps must change the parameters"
    history = [r for kind, rows in records if kind == "history" for r in rows]
    assert {r["step"] for r in history} == {1, 2}
    for r in history:
        assert set(r) == {"run_id", "step", "example_id", "n", "n_correct", "n_timeout", "n_error", "mean_length",
                          "clip_frac_correct", "clip_frac_incorrect", "kept"}
        # n is 4, or a multiple when the sampler crossed an epoch and drew the example twice in one step
        assert r["n"] % 4 == 0 and 0 <= r["n_correct"] <= r["n"] and r["mean_length"] > 0
        if r["n"] == 4:
            assert r["kept"] == (0 < r["n_correct"] < 4)
    for s in stats:
        assert s.drawn_groups == sum(r["n"] // 4 for r in history if r["step"] == s.step)
        assert s.kept_groups >= sum(r["kept"] for r in history if r["step"] == s.step)  # merged rows: any kept
    kept = [r for r in history if r["kept"]]
    assert kept and all(r["clip_frac_correct"] == 0.0 for r in kept[:4])  # one update per batch: ratio is 1
    rollouts = [r for kind, rows in records if kind == "rollouts" for r in rows]
    assert rollouts and all(r["status"] == "correct" for r in rollouts)


def _scripted(status):
    return lambda texts, golds: [_O(status) for _ in texts]


@pytest.mark.parametrize("status,word", [("correct", "too easy"), ("incorrect", "too hard")])
def test_dynamic_sampling_gives_up_with_a_clear_error(status, word):
    model, tok, examples = _lab(8)
    tr = GRPOTrainer(model, tok, examples, _scripted(status),
                     GRPOConfig(prompts_per_step=2, group_size=2, max_rounds=2, max_new_tokens=8))
    with pytest.raises(NoSignalError, match=word) as e:
        tr.step()
    assert "4 groups drawn in 2 rounds" in str(e.value)


def test_lora_changes_only_the_adapter_and_kl_is_measured():
    from curator.verify import Verifier

    model, tok, examples = _lab()
    with Verifier() as v:
        tr = GRPOTrainer(model, tok, examples, v.verify_batch,
                         GRPOConfig(prompts_per_step=4, group_size=4, lr=5e-3, lora=True, kl_coef=0.1, seed=2))
        before = {k: w.clone() for k, w in tr.model.state_dict().items()}
        s1 = tr.step()
        s2 = tr.step()
    assert s1.kl == pytest.approx(0.0, abs=1e-6) and s2.kl > 0  # the policy leaves the reference after step 1
    after = tr.model.state_dict()
    changed = {k for k in after if not torch.equal(after[k], before[k])}
    assert changed and all("lora_" in k for k in changed)
    merged = tr.policy()
    assert not any("lora_" in k for k in merged.state_dict())


def test_selected_logprobs_equal_the_full_log_softmax():
    import torch

    from curator.trainers.grpo import selected_logprobs

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 5, 50, generator=g) * 4
    ids = torch.randint(0, 50, (3, 5), generator=g)
    want = torch.log_softmax(logits, -1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(selected_logprobs(logits, ids), want)
    low = logits.bfloat16()  # row by row in fp32
    want = torch.log_softmax(low.float(), -1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)
    got = selected_logprobs(low, ids)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, want)
    # gradients flow to the logits as through log_softmax
    x = logits.clone().requires_grad_(True)
    selected_logprobs(x, ids).sum().backward()
    y = logits.clone().requires_grad_(True)
    torch.log_softmax(y, -1).gather(-1, ids.unsqueeze(-1)).sum().backward()
    torch.testing.assert_close(x.grad, y.grad)
