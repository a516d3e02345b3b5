"""A real HTTP server on 127.0.0.1 speaking the OpenAI text-completions API, sampling from a real model.

    model, tok = load_lab()
    with CompletionsServer(model, tok, api_key="sk-...") as server:   # server.url -> "http://127.0.0.1:PORT/v1"
        ...
    server.requests          # every request body received, in order
    server.max_in_flight     # the most requests it was answering at one moment
    server.orders            # per answered request, the choice indices in the order they were listed

POST /v1/completions takes `model`, `prompt` (a string or a list), `n`, `max_tokens`, `temperature`,
`seed`, `stop` and vLLM's `return_token_ids`, and answers like vLLM: choice `index` =
prompt_position * n + sample_index, `token_ids` (with the sampled EOS, as vLLM sends them) only when
asked, `usage` totals. Completions come from `curator.trainers.sampling.sample`, one request at a time
(a lock around the model), so a request with the same body and seed always gets the same answer.

Scripted misbehaviour, for the client's tests:
- `api_key`: require `Authorization: Bearer <api_key>`, else 401 with an OpenAI-style error body that
  echoes the key it received (as a careless server might);
- `fail_first=k, fail_status=429|503`: the first k requests fail (429 with `Retry-After: 0`);
- `shuffle=True`: choices are listed in a random order (their `index` stays right);
- `drop_index=i` / `repeat_index=i`: the choice with that index is left out / listed twice;
- `delay`: seconds each request is held before sampling, so that concurrent requests overlap;
- a `model` other than `served_model` is 404, and prompt + max_tokens beyond `max_model_len` tokens
  is 400, with vLLM's error body.
"""

from __future__ import annotations

import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SERVED_MODEL = "lab"


def load_lab():
    """The lab model and tokenizer (CPU, eval mode)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from curator.pipeline import LAB_MODEL

    model = AutoModelForCausalLM.from_pretrained(str(LAB_MODEL)).eval()
    return model, AutoTokenizer.from_pretrained(str(LAB_MODEL))


def _vllm_error(status: int, message: str, kind: str) -> dict:
    return {"object": "error", "message": message, "type": kind, "param": None, "code": status}


class CompletionsServer:
    def __init__(self, model, tokenizer, *, served_model: str = SERVED_MODEL, api_key: str | None = None,
                 fail_first: int = 0, fail_status: int = 429, shuffle: bool = False, drop_index: int | None = None,
                 repeat_index: int | None = None, delay: float = 0.0, max_model_len: int | None = None):
        self.model, self.tokenizer = model, tokenizer
        self.served_model, self.api_key = served_model, api_key
        self.fail_first, self.fail_status = fail_first, fail_status
        self.shuffle, self.drop_index, self.repeat_index = shuffle, drop_index, repeat_index
        self.delay = delay
        self.max_model_len = max_model_len or model.config.max_position_embeddings
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.orders: list[list[int]] = []  # per answered request, the choice indices in the order sent
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._model_lock = threading.Lock()
        self._shuffler = random.Random(0)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with outer._lock:
                    number = len(outer.requests)
                    try:
                        body = json.loads(raw)
                    except json.JSONDecodeError:
                        body = {"_raw": raw.decode("utf-8", "replace")}
                    outer.requests.append(body)
                    outer.headers.append({k.lower(): v for k, v in self.headers.items()})
                    outer.in_flight += 1
                    outer.max_in_flight = max(outer.max_in_flight, outer.in_flight)
                try:
                    status, payload, extra = outer._answer(self.path, number, body, self.headers)
                finally:
                    with outer._lock:
                        outer.in_flight -= 1
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in extra.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "CompletionsServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- the API ---------------------------------------------------------------------------------

    def _answer(self, path: str, number: int, body: dict, headers) -> tuple[int, dict, dict]:
        if path.rstrip("/") != "/v1/completions":
            return 404, {"detail": "Not Found"}, {}
        if self.api_key is not None:
            got = headers.get("Authorization", "")
            if got != f"Bearer {self.api_key}":
                shown = got.removeprefix("Bearer ") or "(none)"
                return 401, {"error": {"message": f"Incorrect API key provided: {shown}.",
                                       "type": "invalid_request_error", "param": None,
                                       "code": "invalid_api_key"}}, {}
        if number < self.fail_first:
            if self.fail_status == 429:
                return 429, {"error": {"message": "Rate limit reached, slow down", "type": "requests",
                                       "param": None, "code": "rate_limit_exceeded"}}, {"Retry-After": "0"}
            return self.fail_status, _vllm_error(self.fail_status, "The server is overloaded", "ServiceUnavailable"), {}
        if self.delay:
            time.sleep(self.delay)
        if body.get("model") != self.served_model:
            return 404, _vllm_error(404, f"The model `{body.get('model')}` does not exist.", "NotFoundError"), {}
        prompts = body.get("prompt")
        prompts = [prompts] if isinstance(prompts, str) else prompts
        n, max_tokens = body.get("n", 1), body.get("max_tokens", 16)
        if not prompts or not all(isinstance(p, str) for p in prompts) or not isinstance(n, int) or n < 1:
            return 400, _vllm_error(400, "prompt must be a non-empty list of strings and n >= 1", "BadRequestError"), {}
        longest = max(len(self.tokenizer(p)["input_ids"]) for p in prompts)
        if longest + max_tokens > self.max_model_len:
            return 400, _vllm_error(
                400, f"This model's maximum context length is {self.max_model_len} tokens. However, you requested "
                     f"{longest + max_tokens} tokens ({longest} in the messages, {max_tokens} in the completion). "
                     "Please reduce the length of the messages or completion.", "BadRequestError"), {}
        with self._model_lock:
            samples = self._sample(prompts, n, max_tokens, float(body.get("temperature", 1.0)), body.get("seed"))
        choices = []
        for p, comps in enumerate(samples):
            for j, c in enumerate(comps):
                text, ids, reason = self._cut(c, body.get("stop"))
                choice = {"index": p * n + j, "text": text, "logprobs": None, "finish_reason": reason,
                          "stop_reason": None}
                if body.get("return_token_ids"):
                    choice["token_ids"] = ids
                choices.append(choice)
        completion_tokens = sum(len(ch.get("token_ids") or ()) for ch in choices)
        if self.shuffle:
            self._shuffler.shuffle(choices)
        if self.drop_index is not None:
            choices = [ch for ch in choices if ch["index"] != self.drop_index]
        if self.repeat_index is not None:
            choices += [ch for ch in choices if ch["index"] == self.repeat_index]
        with self._lock:
            self.orders.append([ch["index"] for ch in choices])
        prompt_tokens = sum(len(self.tokenizer(p)["input_ids"]) for p in prompts)
        return 200, {"id": f"cmpl-{number}", "object": "text_completion", "created": int(time.time()),
                     "model": self.served_model, "choices": choices,
                     "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                               "total_tokens": prompt_tokens + completion_tokens}}, {}

    def _sample(self, prompts, n, max_tokens, temperature, seed):
        from curator.trainers.sampling import sample

        return sample(self.model, self.tokenizer, prompts, n=n, max_new_tokens=max_tokens,
                      temperature=temperature, seed=seed)

    def _cut(self, completion, stop) -> tuple[str, list[int], str]:
        """(text, token ids as vLLM sends them, finish reason) of one sampled completion."""
        ids, text, reason = list(completion.token_ids), completion.text, completion.finish_reason
        stops = [stop] if isinstance(stop, str) else (stop or [])
        hits = [(text.find(s), s) for s in stops if s and s in text]
        if hits:
            at = min(hits)[0]
            # vLLM keeps the ids up to the token that completed the stop string and cuts the text before it
            keep = next(k for k in range(1, len(ids) + 1) if any(s in self.tokenizer.decode(ids[:k]) for s in stops))
            return text[:at], ids[:keep], "stop"
        if reason == "stop":
            ids = ids + [self.tokenizer.eos_token_id]  # the sampled EOS, as vLLM reports it
        return text, ids, reason
