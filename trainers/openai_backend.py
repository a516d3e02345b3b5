"""Rollouts from any OpenAI-compatible `/v1/completions` server.

Meant for `vllm serve`, SGLang's server, TGI's OpenAI route and hosted APIs that
still offer the (legacy) text-completions endpoint: anything that takes a list
of prompts with `n` and answers with `choices`. It is how `curator probe`
reaches a model that does not fit, or is not wanted, in the curator process:

    vllm serve Qwen/Qwen2.5-Math-1.5B --port 8000          # on the GPU machine
    curator probe --backend openai --base-url http://host:8000/v1 --model Qwen/Qwen2.5-Math-1.5B

    from curator.trainers.openai_backend import OpenAIBackend
    backend = OpenAIBackend("http://host:8000/v1", "Qwen/Qwen2.5-Math-1.5B", tokenizer=tok)
    backend.generate(prompts, n=8, max_new_tokens=512, temperature=1.0, seed=0)

Requests. The prompts are cut into requests of `prompts_per_request` prompts
each (one POST `{base_url}/completions` with `prompt` a list and `n`), and at
most `concurrency` requests are in flight at once (a thread pool). With a
seed, each request gets its own seed, `derive_seed(seed, start)` where `start`
is the position of its first prompt, so a call is reproducible for the same
prompts, seed and `prompts_per_request` on a server that honours `seed` (vLLM
and SGLang do; identical prompts inside one request share that seed).

Mapping. A completions response lists `len(prompts) * n` choices; choice
`index` is `prompt_position_in_request * n + sample_index` (the OpenAI rule,
which vLLM and SGLang follow). Choices are placed by that index, never by
their order in the list; a missing, repeated or out-of-range index is an
error naming the endpoint, never a silently misattributed sample.

Retries. Connection errors, timeouts (`timeout` seconds without an answer),
HTTP 408, 429 and 5xx are retried up to `max_retries` times with exponential
backoff and jitter: `backoff * 2**attempt` seconds plus up to as much again at
random, at most `max_backoff`; a `Retry-After` (or `retry-after-ms`) header
replaces that delay, capped at `max_backoff` too. Any other status fails at
once with a `CuratorError` naming the status, the endpoint, the server's own
message and what to check. When the first request fails for good, the
requests not yet sent are cancelled.

The API key. It is read once, from the environment variable *named* by
`api_key_env` (default OPENAI_API_KEY); a local server needs none, and then
no Authorization header is sent. The key never appears in an error message or
in `repr(backend)`: every text echoed from a server or from the network stack
goes through `curator.redact.redact` with the key as a known secret.

Completions. `text` is the server's text; `finish_reason` is "length" when the
server says "length" and "stop" for anything else ("stop", "content_filter",
a null). `token_ids` comes from the choice's `token_ids` when the server sends
it, which recent vLLM (0.10.2 and later) does when the request carries
`"return_token_ids": true`: set `request_token_ids=True` for that. A trailing
EOS id is dropped from them (vLLM includes the EOS token) when the EOS id is
known: `eos_token_id`, else the tokenizer's. `n_tokens`, the completion's
length, is:

- `len(token_ids)` when the server sent token ids;
- else the number of tokens of `text` under `tokenizer`
  (`tokenizer.encode(text, add_special_tokens=False)`), when one was given;
- else `len(text)`, the length in *characters*: the server gives no
  per-choice count (`usage.completion_tokens` is a total over all choices).
  `backend.length_unit` says which unit lengths are in ("tokens" or
  "characters"), so that a caller can label or refuse them. Pass the model's
  tokenizer (the CLI's `--tokenizer`) to get token lengths.

With `request_token_ids=True` and no tokenizer, a reply without token ids is
an error (the server predates `return_token_ids`), not a quiet switch to
characters.

The HTTP client is the standard library's (`urllib.request`, which honours the
usual proxy variables), so retries, headers and the key are under this
module's control alone, whatever version of any client library is installed.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import os
import random
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Callable

from curator.errors import CuratorError
from curator.redact import redact
from curator.trainers.rollout import Completion

_RETRY_STATUSES = frozenset({408, 429})  # and every 5xx
_MESSAGE_CHARS = 300


def derive_seed(seed: int, start: int) -> int:
    """The seed of the request (or prompt) at position `start` of a call seeded with `seed`.

    Distinct for distinct `start` under one seed (for starts below 2**31), and within 0..2**31-1,
    a range every server accepts."""
    return (seed * 1_000_003 + start) % 2**31


class _Cancelled(Exception):
    """Another request of the same call failed: this one stops retrying."""


class OpenAIBackend:
    """Sampling through an OpenAI-compatible /v1/completions server (see the module docstring)."""

    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str | None = "OPENAI_API_KEY",
        prompts_per_request: int = 16,
        concurrency: int = 8,
        max_retries: int = 5,
        backoff: float = 0.5,
        timeout: float = 120.0,
        tokenizer=None,
        stop: str | list[str] | None = None,
        request_token_ids: bool = False,
        eos_token_id: int | None = None,
        max_backoff: float = 60.0,
        on_request: Callable[[int], None] | None = None,
    ):
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise CuratorError(f"the base URL {redact(str(base_url))!r} is not an http(s) URL: "
                               "give the server's API root, e.g. http://127.0.0.1:8000/v1")
        if not model:
            raise CuratorError("the openai backend needs a model name: the name the server serves (GET /v1/models)")
        for label, value, low in (("prompts_per_request", prompts_per_request, 1), ("concurrency", concurrency, 1),
                                  ("max_retries", max_retries, 0)):
            if not isinstance(value, int) or value < low:
                raise ValueError(f"{label} must be an integer >= {low}, got {value!r}")
        if backoff < 0 or max_backoff < 0:
            raise ValueError("backoff and max_backoff must be >= 0 seconds")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive seconds, got {timeout}")
        self.base_url = base_url.rstrip("/")
        self.endpoint = self.base_url + "/completions"
        self.model = model
        self.api_key_env = api_key_env
        self._key = (os.environ.get(api_key_env) or None) if api_key_env else None
        self.prompts_per_request = prompts_per_request
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.timeout = float(timeout)
        self.tokenizer = tokenizer
        self.stop = [stop] if isinstance(stop, str) else (list(stop) if stop else None)
        self.request_token_ids = bool(request_token_ids)
        if eos_token_id is None and tokenizer is not None:
            eos_token_id = getattr(tokenizer, "eos_token_id", None)
        self.eos_token_id = eos_token_id
        self.on_request = on_request
        self._random = random.Random()
        # urllib's default handlers, proxies from the environment included.
        self._opener = urllib.request.build_opener()

    @property
    def length_unit(self) -> str:
        """The unit of `Completion.n_tokens`: "tokens", or "characters" when neither token ids nor a tokenizer."""
        return "tokens" if self.tokenizer is not None or self.request_token_ids else "characters"

    def __repr__(self) -> str:
        key = f"${self.api_key_env} {'set' if self._key else 'unset'}" if self.api_key_env else "none"
        return (f"OpenAIBackend(base_url={redact(self.base_url)!r}, model={self.model!r}, key={key}, "
                f"prompts_per_request={self.prompts_per_request}, concurrency={self.concurrency}, "
                f"length_unit={self.length_unit!r})")

    # -- the RolloutBackend interface ------------------------------------------------------------

    def generate(self, prompts: list[str], n: int, max_new_tokens: int, temperature: float,
                 seed: int | None = None) -> list[list[Completion]]:
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be an integer >= 1, got {n!r}")
        if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be an integer >= 1, got {max_new_tokens!r}")
        prompts = list(prompts)
        if not prompts:
            return []
        size = self.prompts_per_request
        starts = list(range(0, len(prompts), size))
        bodies = {s: self._body(prompts[s : s + size], n, max_new_tokens, temperature,
                                None if seed is None else derive_seed(seed, s)) for s in starts}
        replies: dict[int, list[dict]] = {}
        stop = threading.Event()
        pool = ThreadPoolExecutor(max_workers=min(self.concurrency, len(starts)),
                                  thread_name_prefix="curator-openai")
        try:
            pending = {pool.submit(self._request, bodies[s], len(prompts[s : s + size]), n, stop): s
                       for s in starts}
            done_prompts = 0
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    s = pending.pop(fut)
                    replies[s] = fut.result()  # the first failure propagates; `finally` cancels the rest
                    done_prompts += len(prompts[s : s + size])
                    if self.on_request is not None:
                        self.on_request(done_prompts)
        finally:
            stop.set()
            pool.shutdown(wait=False, cancel_futures=True)
        out: list[list[Completion]] = []
        for s in starts:
            choices = replies[s]
            out.extend([self._completion(c) for c in choices[i * n : (i + 1) * n]]
                       for i in range(len(choices) // n))
        return out

    # -- one request -----------------------------------------------------------------------------

    def _body(self, prompts: list[str], n: int, max_new_tokens: int, temperature: float,
              seed: int | None) -> dict:
        body = {"model": self.model, "prompt": prompts, "n": n, "max_tokens": max_new_tokens,
                "temperature": float(temperature)}
        if seed is not None:
            body["seed"] = seed
        if self.stop:
            body["stop"] = self.stop
        if self.request_token_ids:
            body["return_token_ids"] = True
        return body

    def _headers(self) -> dict[str, str]:
        from curator import __version__

        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   "User-Agent": f"curator/{__version__}"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        return headers

    def _send(self, data: bytes) -> tuple[int, object, bytes]:
        """One POST: (status, headers, body). Network failures raise OSError or HTTPException."""
        req = urllib.request.Request(self.endpoint, data=data, headers=self._headers(), method="POST")
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                return resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as e:  # a status outside 2xx: still an answer
            try:
                payload = e.read()
            except (OSError, http.client.HTTPException, ValueError):
                payload = b""
            finally:
                e.close()
            return e.code, e.headers, payload

    def _request(self, body: dict, n_prompts: int, n: int, stop: threading.Event) -> list[dict]:
        """POST one request with retries; its choices ordered by index (n_prompts * n of them)."""
        data = json.dumps(body).encode()
        attempt = 0
        while True:
            if stop.is_set():
                raise _Cancelled()
            headers = None
            try:
                status, headers, payload = self._send(data)
            except (OSError, http.client.HTTPException) as e:
                why = self._network_reason(e)
            else:
                if 200 <= status < 300:
                    return self._choices(payload, n_prompts, n)
                if status not in _RETRY_STATUSES and status < 500:
                    raise self._status_error(status, payload)
                why = f"HTTP {status}: {self._server_message(payload)}"
            if attempt >= self.max_retries:
                raise CuratorError(
                    f"{self.endpoint} failed {attempt + 1} times in a row (last: {why}); is the server up and "
                    "reachable from here? A loaded server may need a longer timeout, more retries or a lower "
                    "concurrency")
            if stop.wait(self._delay(attempt, headers)):
                raise _Cancelled()
            attempt += 1

    def _delay(self, attempt: int, headers) -> float:
        told = _retry_after(headers)
        if told is not None:
            return min(max(told, 0.0), self.max_backoff)
        base = self.backoff * 2**attempt
        return min(base + self._random.uniform(0, base), self.max_backoff)

    # -- reading replies -------------------------------------------------------------------------

    def _choices(self, payload: bytes, n_prompts: int, n: int) -> list[dict]:
        try:
            data = json.loads(payload)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise CuratorError(
                f"{self.endpoint} answered with a body that is not JSON ({self._clean(payload[:120])!r}): "
                "check the base URL, which for an OpenAI-compatible server usually ends in /v1") from None
        choices = data.get("choices") if isinstance(data, dict) else None
        if not isinstance(choices, list):
            said = self._server_message(payload) if isinstance(data, dict) and "error" in data else ""
            raise CuratorError(f"{self.endpoint} answered without a `choices` list{': ' + said if said else ''}; "
                               "it is not an OpenAI-compatible /v1/completions endpoint")
        expected = n_prompts * n
        slots: list[dict | None] = [None] * expected
        repeated, outside = [], []
        for c in choices:
            idx = c.get("index") if isinstance(c, dict) else None
            if not isinstance(idx, int) or isinstance(idx, bool) or not 0 <= idx < expected:
                outside.append(idx)
            elif slots[idx] is not None:
                repeated.append(idx)
            else:
                slots[idx] = c
        missing = [i for i, c in enumerate(slots) if c is None]
        if missing or repeated or outside:
            problems = [f"{label} {_few(v)}" for label, v in
                        (("missing index", missing), ("repeated index", repeated), ("index out of range", outside))
                        if v]
            raise CuratorError(
                f"{self.endpoint} returned {len(choices)} choices for {n_prompts} prompts x n={n} "
                f"({'; '.join(problems)}): choice index must be prompt_position * n + sample_index "
                f"(0..{expected - 1}); this server does not follow the completions API there, so its samples "
                "cannot be matched to their prompts")
        for c in slots:
            if not isinstance(c.get("text"), str):
                raise CuratorError(f"{self.endpoint} returned choice {c.get('index')} without a text")
            ids = c.get("token_ids")
            if ids is not None and not (isinstance(ids, list) and all(isinstance(t, int) for t in ids)):
                raise CuratorError(f"{self.endpoint} returned choice {c['index']} whose token_ids is not a "
                                   "list of integers")
            if ids is None and self.request_token_ids and self.tokenizer is None:
                raise CuratorError(
                    f"{self.endpoint} sent no token_ids although the request asked for them "
                    "(return_token_ids, vLLM 0.10.2 and later): use a newer server, or drop request_token_ids "
                    "and pass the model's tokenizer for completion lengths")
        return slots

    def _completion(self, choice: dict) -> Completion:
        text = choice["text"]
        reason = "length" if choice.get("finish_reason") == "length" else "stop"
        ids = choice.get("token_ids")
        if ids is not None:
            if ids and self.eos_token_id is not None and ids[-1] == self.eos_token_id:
                ids = ids[:-1]
            return Completion(text, tuple(ids), reason, len(ids))
        if self.tokenizer is not None:
            return Completion(text, None, reason, len(self.tokenizer.encode(text, add_special_tokens=False)))
        return Completion(text, None, reason, len(text))

    # -- messages --------------------------------------------------------------------------------

    def _clean(self, text) -> str:
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        return redact(str(text), secrets=(self._key,) if self._key else ())

    def _server_message(self, payload: bytes) -> str:
        """The server's own explanation from an error body (OpenAI, vLLM, FastAPI shapes), redacted and short."""
        raw = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(payload)
        message = raw
        try:
            data = json.loads(raw)
        except json.JSONDecodeError:
            data = None
        if isinstance(data, dict):
            err = data.get("error")
            found = (err.get("message") if isinstance(err, dict) else err) or data.get("message") \
                or data.get("detail")
            if found:
                message = found if isinstance(found, str) else json.dumps(found)
        message = " ".join(message.split())
        if not message:
            return "(no message)"
        return self._clean(message[:_MESSAGE_CHARS] + ("..." if len(message) > _MESSAGE_CHARS else ""))

    def _network_reason(self, e: BaseException) -> str:
        if isinstance(e, TimeoutError) or "timed out" in str(e):
            return f"no answer within {self.timeout:g}s"
        reason = getattr(e, "reason", None) or e
        return self._clean(f"{type(reason).__name__}: {reason}")[:_MESSAGE_CHARS]

    def _status_error(self, status: int, payload: bytes) -> CuratorError:
        if status in (401, 403):
            where = (f"${self.api_key_env}, which is {'set' if self._key else 'not set'}" if self.api_key_env
                     else "no variable: this backend was told to send no key")
            todo = f"check the API key: it is read from {where}"
        elif status == 404:
            todo = (f"check the base URL (an OpenAI-compatible server's usually ends in /v1) and the model name "
                    f"{self.model!r} (GET {redact(self.base_url)}/models lists what the server serves); the server "
                    "must offer the text-completions endpoint, not only chat")
        elif status == 413:
            todo = "the request is too large: lower prompts_per_request"
        elif status in (400, 422):
            todo = ("the server rejected the request: check the model name, max_new_tokens against the model's "
                    "context length, and the sampling settings")
            if self.request_token_ids:
                todo += "; if it objects to return_token_ids, drop request_token_ids and pass a tokenizer"
        else:
            todo = "see the server's log"
        return CuratorError(f"{self.endpoint} answered HTTP {status}: {self._server_message(payload)}; {todo}")


def _few(values: list) -> str:
    shown = ", ".join(str(v) for v in values[:8])
    return shown + (f" and {len(values) - 8} more" if len(values) > 8 else "")


def _retry_after(headers) -> float | None:
    """Seconds a 429/503 asks us to wait (Retry-After in seconds or as a date, or retry-after-ms), else None."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000.0
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when.timestamp() - time.time()
