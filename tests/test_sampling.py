"""curator.trainers.sampling: the KV-cache decode loop against `model.generate`, seeds, padding, EOS, distribution."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from curator.trainers import sampling  # noqa: E402
from curator.trainers.sampling import sample, sample_ids, split_completions  # noqa: E402
from curator.trainers.tensors import encode_prompts  # noqa: E402

PROMPTS = ["18+97+20=", "3*(4+5)=", "7-2*3=", "(12+30)*2=", "5=", "99-9-9-9="]


@pytest.fixture(scope="module")
def lab():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from curator.pipeline import LAB_MODEL

    if not (LAB_MODEL / "config.json").exists():
        pytest.skip(f"{LAB_MODEL} is absent")
    model = AutoModelForCausalLM.from_pretrained(str(LAB_MODEL)).eval()
    return model, AutoTokenizer.from_pretrained(str(LAB_MODEL))


@pytest.fixture(scope="module")
def gpt2():
    """A randomly initialised tiny GPT-2 over the lab tokenizer: learned absolute positions, another architecture.

    initializer_range=0.5 rather than the default 0.02: with small weights every greedy completion is the same
    repeated token, which would make the comparisons below weak; with 0.5 they differ and one prompt stops."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from curator.lab.tokenizer import build_tokenizer

    tok = build_tokenizer()
    torch.manual_seed(0)
    config = GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=len(tok), n_positions=128, initializer_range=0.5,
                        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    return GPT2LMHeadModel(config).eval(), tok


def generate_greedy(model, tok, prompts, max_new_tokens):
    ids, mask = encode_prompts(tok, prompts)
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=max_new_tokens,
                             eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    return split_completions(tok, out[:, ids.shape[1]:])


def ours_greedy(model, tok, prompts, max_new_tokens):
    return [c for [c] in sample(model, tok, prompts, n=1, max_new_tokens=max_new_tokens, temperature=0.0)]


def test_greedy_matches_generate_on_the_lab_model(lab):
    model, tok = lab
    ours = ours_greedy(model, tok, PROMPTS, 48)
    ref = generate_greedy(model, tok, PROMPTS, 48)
    assert [(c.text, c.finish_reason) for c in ours] == [(c.text, c.finish_reason) for c in ref]
    assert any(c.finish_reason == "stop" for c in ours)  # the trained model does stop


@pytest.mark.parametrize("path", ["fast", "generic"])
def test_greedy_matches_generate_on_a_tiny_gpt2(gpt2, monkeypatch, path):
    model, tok = gpt2
    if path == "generic":  # no row dropping (finished rows stay in the batch), the model builds its own masks
        monkeypatch.setattr(sampling, "_row_selector", lambda cache: None)
        monkeypatch.setattr(sampling, "_PADDING_MASK_MODELS", frozenset())
    ours = ours_greedy(model, tok, PROMPTS, 12)
    ref = generate_greedy(model, tok, PROMPTS, 12)
    assert [c.text for c in ours] == [c.text for c in ref]
    assert [c.finish_reason for c in ours] == [c.finish_reason for c in ref]
    assert len({c.text for c in ours}) == len(PROMPTS) and {c.finish_reason for c in ours} == {"stop", "length"}


def test_generic_and_fast_paths_give_the_same_greedy_ids(lab, monkeypatch):
    model, tok = lab
    ids, mask = encode_prompts(tok, [p for p in PROMPTS for _ in range(3)])
    args = (model, ids, mask, 40, 0.0, tok.eos_token_id, tok.pad_token_id)
    fast = sample_ids(*args)
    monkeypatch.setattr(sampling, "_SYNC_EVERY_CPU", 3)  # the accelerator schedule: finished rows checked every 3 steps
    assert torch.equal(sample_ids(*args), fast)
    monkeypatch.setattr(sampling, "_row_selector", lambda cache: None)
    monkeypatch.setattr(sampling, "_PADDING_MASK_MODELS", frozenset())
    assert torch.equal(sample_ids(*args), fast)


def test_same_seed_same_samples_and_different_seeds_differ(lab):
    model, tok = lab
    prompts = ["1", "12+", "7-"]
    a = sample(model, tok, prompts, n=8, max_new_tokens=24, temperature=1.5, seed=11)
    b = sample(model, tok, prompts, n=8, max_new_tokens=24, temperature=1.5, seed=11)
    c = sample(model, tok, prompts, n=8, max_new_tokens=24, temperature=1.5, seed=12)
    assert a == b
    assert a != c
    assert len({comp.text for group in a for comp in group}) > 3  # it does sample


def test_seeded_sampling_is_deterministic_with_delayed_row_dropping(lab, monkeypatch):
    model, tok = lab
    monkeypatch.setattr(sampling, "_SYNC_EVERY_CPU", 4)
    a = sample(model, tok, ["12+", "1"], n=6, max_new_tokens=20, temperature=1.0, seed=3)
    b = sample(model, tok, ["12+", "1"], n=6, max_new_tokens=20, temperature=1.0, seed=3)
    assert a == b


@pytest.mark.parametrize("which", ["lab", "gpt2"])
def test_left_padding_does_not_change_a_greedy_completion(lab, gpt2, which):
    model, tok = lab if which == "lab" else gpt2
    short = "5="
    alone = ours_greedy(model, tok, [short], 16)[0]
    batch = ours_greedy(model, tok, ["(12+30)*2-7=", short, "99-9-9-9+100="], 16)
    assert batch[1] == alone


def test_nothing_after_eos_and_finish_reasons(lab):
    model, tok = lab
    eos, pad = tok.eos_token_id, tok.pad_token_id
    ids, mask = encode_prompts(tok, [p for p in PROMPTS for _ in range(4)])
    gen = sample_ids(model, ids, mask, 48, 1.0, eos, pad, torch.Generator().manual_seed(0))
    stopped = 0
    for row in gen.tolist():
        if eos in row:
            stopped += 1
            after = row[row.index(eos) + 1:]
            assert all(t == pad for t in after)
    assert stopped > 0
    assert gen.shape[1] <= 48
    # the batch ends when the last row stops: the last column holds at least one real token
    assert bool(((gen[:, -1] != pad)).any())

    full = ours_greedy(model, tok, ["18+97+20="], 48)[0]
    assert full.finish_reason == "stop" and full.length > 4
    cut = ours_greedy(model, tok, ["18+97+20="], 4)[0]
    assert cut.finish_reason == "length"
    assert cut.length == 4 and cut.token_ids == full.token_ids[:4]


def test_zero_new_tokens(lab):
    model, tok = lab
    ids, mask = encode_prompts(tok, PROMPTS[:2])
    assert sample_ids(model, ids, mask, 0, 1.0, tok.eos_token_id, tok.pad_token_id).shape == (2, 0)


@pytest.mark.parametrize("which,prompt,temperature", [("lab", "12+", 1.0), ("lab", "1", 2.5), ("gpt2", "7-", 1.0)])
def test_next_token_frequencies_match_softmax(lab, gpt2, which, prompt, temperature):
    """40,000 first tokens for one prompt against softmax(logits / T): each frequency has a standard deviation of
    at most 0.0025, the tolerance is 0.015 (6 sigma), and the seed is fixed, so this cannot flake."""
    model, tok = lab if which == "lab" else gpt2
    n = 40_000
    ids, mask = encode_prompts(tok, [prompt] * n)
    gen = sample_ids(model, ids, mask, 1, temperature, tok.eos_token_id, tok.pad_token_id,
                     torch.Generator().manual_seed(1234))
    with torch.inference_mode():
        logits = model(input_ids=ids[:1], attention_mask=mask[:1]).logits[0, -1]
    expected = torch.softmax(logits.float() / temperature, dim=-1)
    observed = torch.bincount(gen[:, 0], minlength=expected.shape[0]).double() / n
    assert expected.max() < 0.95  # a distribution worth checking
    assert (observed - expected.double()).abs().max().item() < 0.015


def test_top_k_keeps_only_the_k_most_likely_tokens(lab):
    model, tok = lab
    ids, mask = encode_prompts(tok, ["12+"] * 2000)
    gen = sample_ids(model, ids, mask, 1, 3.0, tok.eos_token_id, tok.pad_token_id,
                     torch.Generator().manual_seed(0), top_k=3)
    with torch.inference_mode():
        top3 = set(model(input_ids=ids[:1], attention_mask=mask[:1]).logits[0, -1].topk(3).indices.tolist())
    assert set(gen[:, 0].tolist()) == top3
