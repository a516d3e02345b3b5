"""Rollout backends beyond HF: the OpenAI-compatible /v1/completions client against a real HTTP server
sampling from the lab model (tests/openai_server.py), and the offline-vLLM backend's pure parts."""

from __future__ import annotations

import json
import socket
import sys
import time
import types
from email.utils import formatdate
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from openai_server import SERVED_MODEL, CompletionsServer, load_lab  # noqa: E402

from curator.errors import CuratorError  # noqa: E402
from curator.trainers.openai_backend import OpenAIBackend, _retry_after, derive_seed  # noqa: E402
from curator.trainers.rollout import Completion  # noqa: E402
from curator.trainers.sampling import sample  # noqa: E402
from curator.trainers.vllm_backend import (  # noqa: E402
    AdapterIds,
    VLLMBackend,
    completions_from_request_output,
    sampling_params_kwargs,
)

PROMPTS = ["18+97+20=", "3*(4+5)=", "7-2*3=", "(12+30)*2=", "5+1="]
KEY = "sk-test-SECRET123"


@pytest.fixture(scope="module")
def lab():
    from curator.pipeline import LAB_MODEL

    if not (LAB_MODEL / "config.json").exists():
        pytest.skip(f"{LAB_MODEL} is absent")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield load_lab()
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _no_proxy_no_key(monkeypatch):
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


def backend(server, **kw) -> OpenAIBackend:
    kw.setdefault("backoff", 0.01)
    return OpenAIBackend(server.url, SERVED_MODEL, **kw)


def expected(lab, prompts, n, max_new_tokens, temperature, seed, per_request):
    """What the server must answer, prompt by prompt: the lab model sampled request by request."""
    model, tok = lab
    out = []
    for start in range(0, len(prompts), per_request):
        out += sample(model, tok, prompts[start : start + per_request], n=n, max_new_tokens=max_new_tokens,
                      temperature=temperature, seed=derive_seed(seed, start))
    return out


# -- the OpenAI-compatible backend -------------------------------------------------------------------


@pytest.mark.parametrize("shuffle", [False, True])
def test_each_sample_lands_with_its_own_prompt(lab, shuffle):
    model, tok = lab
    with CompletionsServer(model, tok, shuffle=shuffle) as server:
        b = backend(server, prompts_per_request=2, concurrency=2, request_token_ids=True, tokenizer=tok)
        got = b.generate(PROMPTS, n=3, max_new_tokens=24, temperature=1.0, seed=7)
    want = expected(lab, PROMPTS, 3, 24, 1.0, 7, 2)
    assert [[c.text for c in cs] for cs in got] == [[c.text for c in cs] for cs in want]
    assert [[c.finish_reason for c in cs] for cs in got] == [[c.finish_reason for c in cs] for cs in want]
    for cs, ws in zip(got, want):
        assert len(cs) == 3
        for c, w in zip(cs, ws):
            assert c.token_ids == w.token_ids  # the EOS vLLM-style servers include is dropped
            assert c.token_ids == tuple(tok.encode(c.text, add_special_tokens=False))
            assert c.n_tokens == len(c.token_ids) and tok.eos_token_id not in c.token_ids
    # two requests are in flight at once, so they may arrive in either order
    assert sorted(r["prompt"] for r in server.requests) == sorted([PROMPTS[0:2], PROMPTS[2:4], PROMPTS[4:5]])
    assert {r["seed"] for r in server.requests} == {derive_seed(7, s) for s in (0, 2, 4)}
    assert all(r["return_token_ids"] is True and r["n"] == 3 and r["max_tokens"] == 24 for r in server.requests)
    assert all("authorization" not in h for h in server.headers)  # no key in the environment: no header
    if shuffle:
        assert any(order != sorted(order) for order in server.orders)
    assert b.length_unit == "tokens"


def test_lengths_without_token_ids(lab):
    model, tok = lab
    with CompletionsServer(model, tok) as server:
        by_tok = backend(server, tokenizer=tok).generate(PROMPTS[:2], n=2, max_new_tokens=16, temperature=1.0, seed=1)
        by_char = backend(server).generate(PROMPTS[:2], n=2, max_new_tokens=16, temperature=1.0, seed=1)
    assert all("return_token_ids" not in r and "stop" not in r for r in server.requests)
    for a, b in zip(sum(by_tok, []), sum(by_char, [])):
        assert a.text == b.text and a.token_ids is None and b.token_ids is None
        assert a.n_tokens == len(tok.encode(a.text, add_special_tokens=False))
        assert b.n_tokens == len(b.text)
    assert backend(server).length_unit == "characters"


def test_stop_strings_are_sent_and_honoured(lab):
    model, tok = lab
    with CompletionsServer(model, tok) as server:
        got = backend(server, stop=";", tokenizer=tok).generate(["18+97+20="], n=4, max_new_tokens=24,
                                                                temperature=0.0)
    assert server.requests[0]["stop"] == [";"] and "seed" not in server.requests[0]
    assert all(";" not in c.text and c.finish_reason == "stop" for c in got[0])


@pytest.mark.parametrize("status", [429, 503])
def test_429_and_5xx_are_retried(lab, status):
    model, tok = lab
    with CompletionsServer(model, tok, fail_first=3, fail_status=status) as server:
        b = backend(server, prompts_per_request=2, concurrency=1, max_retries=3)
        got = b.generate(PROMPTS[:4], n=2, max_new_tokens=8, temperature=1.0, seed=0)
    assert len(got) == 4 and all(len(cs) == 2 for cs in got)
    assert len(server.requests) == 3 + 2  # three refusals, then the two requests


def test_retries_give_up_with_a_clear_error(lab):
    model, tok = lab
    with CompletionsServer(model, tok, fail_first=100, fail_status=503) as server:
        with pytest.raises(CuratorError) as e:
            backend(server, max_retries=2, backoff=0.0).generate(PROMPTS[:1], n=1, max_new_tokens=4, temperature=1.0)
    assert len(server.requests) == 3
    msg = str(e.value)
    assert "failed 3 times" in msg and "HTTP 503" in msg and "overloaded" in msg and server.url in msg


def test_400_names_status_url_and_server_message_never_the_key(lab, monkeypatch):
    model, tok = lab
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with CompletionsServer(model, tok, api_key=KEY) as server:
        b = backend(server)
        with pytest.raises(CuratorError) as e:
            b.generate(PROMPTS[:2], n=2, max_new_tokens=100, temperature=1.0)  # beyond the 64-token context
    msg = str(e.value)
    assert "HTTP 400" in msg and f"{server.url}/completions" in msg and "maximum context length is 64" in msg
    assert "max_new_tokens" in msg and "SECRET123" not in msg
    assert len(server.requests) == 1  # a 400 is not retried
    assert server.headers[0]["authorization"] == f"Bearer {KEY}"
    assert "SECRET123" not in repr(b) and "$OPENAI_API_KEY set" in repr(b)


def test_401_is_not_retried_and_the_echoed_key_is_redacted(lab, monkeypatch):
    model, tok = lab
    monkeypatch.setenv("CURATOR_TEST_KEY", KEY)
    with CompletionsServer(model, tok, api_key="sk-the-right-one-0000") as server:
        b = backend(server, api_key_env="CURATOR_TEST_KEY", max_retries=4)
        with pytest.raises(CuratorError) as e:
            b.generate(PROMPTS[:1], n=1, max_new_tokens=4, temperature=1.0)
    msg = str(e.value)
    assert "HTTP 401" in msg and server.url in msg and "Incorrect API key" in msg and "$CURATOR_TEST_KEY" in msg
    assert "SECRET123" not in msg and "SECRET123" not in repr(b)
    assert len(server.requests) == 1


def test_unknown_model_is_a_404_with_advice(lab):
    model, tok = lab
    with CompletionsServer(model, tok) as server:
        with pytest.raises(CuratorError, match=r"HTTP 404: The model `other` does not exist.*base URL"):
            OpenAIBackend(server.url, "other").generate(PROMPTS[:1], n=1, max_new_tokens=4, temperature=1.0)


@pytest.mark.parametrize("concurrency", [1, 3])
def test_concurrency_is_bounded_and_used(lab, concurrency):
    model, tok = lab
    progress = []
    with CompletionsServer(model, tok, delay=0.15) as server:
        b = backend(server, prompts_per_request=1, concurrency=concurrency, on_request=progress.append)
        got = b.generate(PROMPTS + PROMPTS[:3], n=1, max_new_tokens=4, temperature=1.0, seed=3)
    assert len(got) == 8 and len(server.requests) == 8
    assert 1 <= server.max_in_flight <= concurrency
    if concurrency > 1:
        assert server.max_in_flight > 1
    assert progress == list(range(1, 9))


@pytest.mark.parametrize("option,word", [({"drop_index": 1}, "missing index 1"),
                                         ({"repeat_index": 0}, "repeated index 0")])
def test_a_choice_index_missing_or_repeated_is_an_error(lab, option, word):
    model, tok = lab
    with CompletionsServer(model, tok, **option) as server:
        with pytest.raises(CuratorError, match=word) as e:
            backend(server).generate(PROMPTS[:2], n=2, max_new_tokens=4, temperature=1.0)
    assert "prompt_position * n + sample_index" in str(e.value)


def test_unreachable_server_and_timeouts(lab):
    model, tok = lab
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(CuratorError, match=r"failed 2 times.*Connection ?Refused") as e:
        OpenAIBackend(f"http://127.0.0.1:{port}/v1", "m", max_retries=1, backoff=0.0).generate(
            ["1+1="], n=1, max_new_tokens=4, temperature=1.0)
    assert f"127.0.0.1:{port}/v1/completions" in str(e.value)
    with CompletionsServer(model, tok, delay=1.0) as server:
        start = time.monotonic()
        with pytest.raises(CuratorError, match=r"no answer within 0.2s"):
            backend(server, timeout=0.2, max_retries=0).generate(["1+1="], n=1, max_new_tokens=4, temperature=1.0)
        assert time.monotonic() - start < 0.9


def test_evaluate_end_to_end_through_the_server(lab):
    from curator.pipeline import LAB_DATA
    from curator.trainers.evaluate import evaluate
    from curator.trainers.grpo import Example
    from curator.verify import Verifier

    model, tok = lab
    rows = [json.loads(line) for line in (LAB_DATA / "eval.jsonl").read_text().splitlines()[:10]]
    examples = [Example(f"e{i}", r["prompt"], r["answer"]) for i, r in enumerate(rows)]
    with CompletionsServer(model, tok, shuffle=True) as server, Verifier(workers=1) as v:
        b = backend(server, prompts_per_request=4, concurrency=2, tokenizer=tok)
        evals, kept = evaluate(b, examples, v.verify_batch, n=4, temperature=0.7, seed=0, max_new_tokens=40,
                               chunk=8, keep="all")
    assert [r["example_id"] for r in evals] == [e.example_id for e in examples]
    assert all(r["n"] == 4 and 0 <= r["n_correct"] <= 4 for r in evals)
    assert sum(r["n_correct"] for r in evals) > 0  # the lab model solves a good share of these
    assert len(kept) == 40 and all(k["length"] >= 0 for k in kept)
    assert len(server.requests) == 3  # chunk 8 -> requests of 4+4, then chunk 2 -> one request


def test_backend_helpers():
    assert len({derive_seed(5, s) for s in range(0, 4096, 16)}) == 256
    assert all(0 <= derive_seed(seed, 7) < 2**31 for seed in (-3, 0, 2**40))
    assert _retry_after(None) is None
    assert _retry_after({"retry-after": "2"}) == 2.0
    assert _retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert 8 < _retry_after({"retry-after": formatdate(time.time() + 10, usegmt=True)}) <= 10
    assert _retry_after({"retry-after": "soon"}) is None
    b = OpenAIBackend("http://127.0.0.1:9/v1/", "m", backoff=1.0, max_backoff=3.0)
    assert b.endpoint == "http://127.0.0.1:9/v1/completions"
    assert all(1.0 <= b._delay(0, None) <= 2.0 for _ in range(20))
    assert b._delay(5, None) == 3.0 and b._delay(0, {"retry-after": "100"}) == 3.0
    assert b.generate([], n=2, max_new_tokens=4, temperature=1.0) == []
    with pytest.raises(CuratorError, match="not an http"):
        OpenAIBackend("127.0.0.1:8000", "m")
    with pytest.raises(ValueError):
        OpenAIBackend("http://x/v1", "m", concurrency=0)


# -- the offline vLLM backend (no vLLM needed) -------------------------------------------------------


def test_sampling_params_kwargs():
    assert sampling_params_kwargs(4, 32, 0.7, 5) == {
        "n": 4, "max_tokens": 32, "temperature": 0.7, "top_p": 1.0, "top_k": -1, "min_p": 0.0, "seed": 5}
    assert sampling_params_kwargs(1, 8, 0, None, stop=";")["stop"] == [";"]
    assert sampling_params_kwargs(1, 8, 1.0, None, stop=["a", "b"])["stop"] == ["a", "b"]
    with pytest.raises(ValueError):
        sampling_params_kwargs(0, 8, 1.0, None)


def _out(index, text, ids, reason):
    return SimpleNamespace(index=index, text=text, token_ids=ids, finish_reason=reason, stop_reason=None)


def test_completions_from_request_output():
    outputs = [
        SimpleNamespace(prompt="1+1=", outputs=[_out(1, "3", [7, 2], "stop"), _out(0, "2", [6, 2], "stop")]),
        SimpleNamespace(prompt="2+2=", outputs=[_out(0, "44", (8, 8), "length"), _out(1, "4", [8], None)]),
    ]
    got = completions_from_request_output(outputs, eos_token_id=2, n=2)
    assert got == [
        [Completion("2", (6,), "stop", 1), Completion("3", (7,), "stop", 1)],
        [Completion("44", (8, 8), "length", 2), Completion("4", (8,), "stop", 1)],
    ]
    assert completions_from_request_output(outputs[:1])[0][0].token_ids == (6, 2)  # EOS unknown: kept
    with pytest.raises(CuratorError, match=r"samples \[0, 1\] for prompt 0, expected \[0, 1, 2\]"):
        completions_from_request_output(outputs[:1], n=3)


def test_adapter_ids_are_never_reused():
    ids = AdapterIds()
    taken = [ids.take("/ckpt/adapter") for _ in range(3)] + [ids.take("/ckpt/other")]
    assert [i for _, i in taken] == [1, 2, 3, 4]
    assert len({name for name, _ in taken}) == 4 and taken[0][0].endswith("adapter")


def test_vllm_backend_without_vllm_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # as if not installed, even where it is
    with pytest.raises(CuratorError, match=r"curator-rlvr\[vllm\]") as e:
        VLLMBackend("some/model")
    assert "--backend openai" in str(e.value)


def test_vllm_backend_drives_the_engine(monkeypatch):
    """The plumbing through a stand-in `vllm` module: per-prompt seeds, adapters, outputs."""
    calls = {}

    class LLM:
        def __init__(self, **kw):
            calls["init"] = kw

        def get_tokenizer(self):
            return SimpleNamespace(eos_token_id=2)

        def generate(self, prompts, params, use_tqdm=True, lora_request=None):
            calls.setdefault("generate", []).append((prompts, params, lora_request))
            return [SimpleNamespace(outputs=[_out(j, p + str(j), [5, 2], "stop") for j in range(params[0]["n"])])
                    for p in prompts]

    vllm = types.ModuleType("vllm")
    vllm.LLM, vllm.SamplingParams = LLM, lambda **kw: kw
    lora = types.ModuleType("vllm.lora")
    request = types.ModuleType("vllm.lora.request")
    request.LoRARequest = lambda name, lora_id, path: SimpleNamespace(lora_name=name, lora_int_id=lora_id,
                                                                      lora_path=path)
    for name, mod in (("vllm", vllm), ("vllm.lora", lora), ("vllm.lora.request", request)):
        monkeypatch.setitem(sys.modules, name, mod)

    b = VLLMBackend("m", gpu_memory_utilization=0.3, enable_lora=True)
    assert calls["init"]["gpu_memory_utilization"] == 0.3 and calls["init"]["enable_lora"] is True
    got = b.generate(["a", "b"], n=2, max_new_tokens=8, temperature=1.0, seed=4)
    assert got == [[Completion("a0", (5,), "stop", 1), Completion("a1", (5,), "stop", 1)],
                   [Completion("b0", (5,), "stop", 1), Completion("b1", (5,), "stop", 1)]]
    b.set_adapter("/tmp/adapter")
    b.generate(["a"], n=2, max_new_tokens=8, temperature=1.0, seed=4)
    b.set_adapter("/tmp/adapter")  # same path, new weights: a new id
    b.generate(["a"], n=2, max_new_tokens=8, temperature=1.0)
    (_, p0, l0), (_, p1, l1), (_, p2, l2) = calls["generate"]
    assert [p["seed"] for p in p0] == [derive_seed(4, 0), derive_seed(4, 1)] and p2[0]["seed"] is None
    assert l0 is None and (l1.lora_int_id, l2.lora_int_id) == (1, 2) and l1.lora_name != l2.lora_name
    b.set_adapter(None)
    assert b.adapter is None


def test_cli_probe_through_an_openai_server(lab, tmp_path):
    """`curator probe --backend openai` end to end: the job process talks to the server over HTTP."""
    import subprocess
    import sys

    from curator.pipeline import LAB_DATA
    from curator.store import Workspace
    from tests.conftest import curator_env

    pool = tmp_path / "pool.jsonl"
    pool.write_text("".join((LAB_DATA / "eval.jsonl").read_text().splitlines(keepends=True)[:12]))
    ws = tmp_path / "w.duckdb"
    cli = [sys.executable, "-m", "curator.cli", "-q", "-w", str(ws)]
    env = curator_env() | {"CURATOR_TEST_KEY": KEY}
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        env.pop(name, None)
    r = subprocess.run([*cli, "ingest", str(pool)], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    model, tok = lab
    with CompletionsServer(model, tok, api_key=KEY, fail_first=1, fail_status=503) as server:
        args = [*cli, "probe", "--backend", "openai", "--base-url", server.url, "--model", SERVED_MODEL,
                "--api-key-env", "CURATOR_TEST_KEY", "--eval-n", "4", "--max-new-tokens", "40", "--concurrency", "2"]
        r = subprocess.run(args, capture_output=True, text=True, env=env, timeout=180)
        assert r.returncode == 0, r.stderr
        assert "12 examples" in r.stdout and KEY not in r.stdout + r.stderr
        n_requests = len(server.requests)
        # the same command again finds the finished probe and sends nothing
        r = subprocess.run(args, capture_output=True, text=True, env=env, timeout=180)
        assert r.returncode == 0 and len(server.requests) == n_requests
        # a wrong key: one clear line, exit 2, the key never printed
        env_bad = env | {"CURATOR_TEST_KEY": "sk-wrong-KEY999"}
        r = subprocess.run([*args[:-2], "--concurrency", "1", "--eval-n", "2"], capture_output=True, text=True,
                           env=env_bad, timeout=180)
        assert r.returncode == 2 and "401" in r.stderr and "sk-wrong-KEY999" not in r.stdout + r.stderr
    with Workspace(ws, read_only=True) as w:
        run = w.sql("SELECT backend, model, config FROM runs WHERE kind = 'probe' AND status = 'finished'").fetchall()
        assert len(run) == 1 and run[0][0] == "openai" and run[0][1] == SERVED_MODEL
        assert KEY not in run[0][2] and "CURATOR_TEST_KEY" in run[0][2]
        n, correct = w.sql("SELECT count(*), sum(n_correct) FROM evals").fetchone()
        assert n == 12 and correct > 0
