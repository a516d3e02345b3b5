"""A probe's id names what was probed: a checkpoint rewritten in place is a new probe, a copied one is not."""

from __future__ import annotations

import os
import shutil

from curator.train import EvalConfig, _probe_id, model_fingerprint


def _checkpoint(folder, weights: bytes):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text('{"model_type": "llama"}')
    (folder / "model.safetensors").write_bytes(weights)
    (folder / "notes.md").write_text("not part of the model")
    return folder


def test_rewritten_checkpoint_gets_a_new_probe_id_and_a_copy_keeps_it(tmp_path):
    examples = [("a", "1+1=", "2"), ("b", "2+2=", "4")]
    ev = EvalConfig(n=4)
    final = _checkpoint(tmp_path / "final", b"\x01" * 5000)
    first = _probe_id(str(final), examples, ev, 48)
    assert first == _probe_id(str(final), examples, ev, 48)  # stable
    # another training run writes the same folder: different weights, same size, same path
    (final / "model.safetensors").write_bytes(b"\x02" * 5000)
    assert _probe_id(str(final), examples, ev, 48) != first
    # a large file changed only near its end is seen too (first and last MiB are read)
    big = _checkpoint(tmp_path / "big", bytes(5 << 20))
    before = model_fingerprint(str(big))
    with open(big / "model.safetensors", "r+b") as f:
        f.seek(-10, os.SEEK_END)
        f.write(b"x" * 10)
    assert model_fingerprint(str(big)) != before
    # files that are not weights, config or tokenizer do not count; a copy elsewhere has the same content
    (final / "notes.md").write_text("edited")
    copy = shutil.copytree(final, tmp_path / "copy")
    assert model_fingerprint(str(copy)) == model_fingerprint(str(final))
    # a Hub id or a server's model name has no local fingerprint
    assert model_fingerprint("Qwen/Qwen2.5-Math-1.5B") is None
