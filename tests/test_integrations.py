"""The verl curriculum sampler and the OpenRLHF reward file, without verl or OpenRLHF installed.

verl's contract (volcengine/verl `verl/trainer/main_ppo.py::create_rl_sampler`):
`cls(data_source=dataset, data_config=config.data)`, then
`isinstance(sampler, verl.experimental.dataset.sampler.AbstractSampler)`.
OpenRLHF's (OpenRLHF/OpenRLHF `openrlhf/utils/rollout.py`, commit 06f132b8):
the `--remote_rm_url` file is loaded with `spec_from_file_location("reward_func",
path)` and `reward_func(queries, prompts, labels)` is called with one-element
lists; it returns {"rewards", "scores", "extra_logs"}.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import types
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader, Sampler

from conftest import curator_env
from curator.export.formats import write as export_write
from curator.integrations import verl_sampler as vs
from curator.store import Workspace, utcnow

# ----------------------------------------------------------------------------- verl sampler

ORDER = ["12", "3", "7", "99", "0", "5"]  # "99" was filtered out of the verl dataset (over-long prompt)


def export_folder(tmp_path: Path) -> Path:
    """A curator export in ORDER, written by curator's own writers (parquet/, jsonl/, verl/)."""
    out = tmp_path / "export"
    rows = pd.DataFrame({"example_id": ORDER, "prompt": [f"p{x}" for x in ORDER], "answer": "1",
                         "solution": None, "dataset": "d"})
    for fmt in ("parquet", "jsonl", "verl"):
        export_write(rows, out, fmt, "train")
    return out


class FakeRLHFDataset(torch.utils.data.Dataset):
    """Like verl's RLHFDataset: rows in `.dataframe` (a datasets.Dataset); __getitem__ would tokenize."""

    def __init__(self, indices):
        import datasets

        self.dataframe = datasets.Dataset.from_list(
            [{"prompt": [{"role": "user", "content": f"p{i}"}], "extra_info": {"index": i, "split": "train"}}
             for i in indices])

    def __len__(self):
        return len(self.dataframe)

    def __getitem__(self, i):
        raise AssertionError("the sampler must read ids from .dataframe, not tokenize every row")


class Cfg(dict):
    """Stands in for OmegaConf's DictConfig: attribute and .get access."""

    __getattr__ = dict.get


DATASET = [0, 1, 3, 5, 7, 12, 40]  # dataset row i has extra_info.index DATASET[i]


def test_sampler_yields_the_export_order_by_id(tmp_path):
    order = export_folder(tmp_path)
    data = FakeRLHFDataset(DATASET)
    s = vs.CuratorOrderSampler(data_source=data, data_config=Cfg(sampler=Cfg(order=str(order))))
    ids = [DATASET[i] for i in s]
    assert ids == [12, 3, 7, 0, 5]  # the export's order; 99 is not in the dataset
    assert len(s) == 5 and (s.n_missing, s.n_unknown) == (1, 2)  # rows 1 and 40 are not in the order: dropped
    assert list(s) == list(s)  # the same order every epoch
    batches = [b.tolist() for b in DataLoader(list(range(len(data))), batch_size=2, sampler=s, drop_last=True)]
    assert batches == [[5, 2], [4, 0]]  # verl's StatefulDataLoader batches in the sampler's order

    appended = vs.CuratorOrderSampler(data, Cfg(sampler=Cfg(order=str(order), unknown="append")))
    assert [DATASET[i] for i in appended] == [12, 3, 7, 0, 5, 1, 40] and len(appended) == 7


def test_sampler_reads_every_export_file_and_a_plain_id_list(tmp_path, monkeypatch):
    order = export_folder(tmp_path)
    assert vs.read_order(order) == ORDER
    for rel in ("parquet/train.parquet", "jsonl/train.jsonl", "verl/train.parquet"):
        assert vs.read_order(order / rel) == ORDER, rel
    txt = tmp_path / "order.txt"
    txt.write_text("5\n0\n\n12\n")
    monkeypatch.setenv("CURATOR_ORDER", str(txt))
    s = vs.CuratorOrderSampler(FakeRLHFDataset(DATASET), None)
    assert [DATASET[i] for i in s] == [5, 0, 12]
    # a plain list of dicts (no .dataframe) works through __getitem__, with verl's top-level `index` copy
    rows = [{"index": i, "extra_info": {}} for i in DATASET]
    assert [rows[i]["index"] for i in vs.CuratorOrderSampler(rows, None, order=txt)] == [5, 0, 12]
    with pytest.raises(ValueError, match="none of the 7 dataset rows"):
        vs.CuratorOrderSampler(FakeRLHFDataset(DATASET), None, order=txt, id_field="extra_info.missing")
    with pytest.raises(ValueError, match="unknown='keep'"):
        vs.CuratorOrderSampler(FakeRLHFDataset(DATASET), None, order=txt, unknown="keep")


def test_verl_sees_its_abstract_sampler_when_verl_is_importable(tmp_path, monkeypatch):
    assert vs.VerlOrderSampler is vs.CuratorOrderSampler  # no verl here
    # a stand-in for verl/experimental/dataset/sampler.py, with the interface verl defines
    mod = types.ModuleType("verl.experimental.dataset.sampler")

    class AbstractSampler(Sampler[int]):
        def __init__(self, data_source, data_config):
            pass

    class AbstractCurriculumSampler(AbstractSampler):
        def update(self, batch) -> None:
            pass

    mod.AbstractSampler, mod.AbstractCurriculumSampler = AbstractSampler, AbstractCurriculumSampler
    for name in ("verl", "verl.experimental", "verl.experimental.dataset"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "verl.experimental.dataset.sampler", mod)
    cls = getattr(vs, "VerlOrderSampler")  # what verl's load_extern_object does
    sampler = cls(data_source=FakeRLHFDataset(DATASET), data_config=Cfg(sampler=Cfg(order=str(export_folder(tmp_path)))))
    assert isinstance(sampler, AbstractSampler) and isinstance(sampler, vs.CuratorOrderSampler)
    assert [DATASET[i] for i in sampler] == [12, 3, 7, 0, 5]
    assert getattr(vs, "VerlOrderSampler") is cls  # one class per verl, so pickling by name finds it again


def test_importing_the_integrations_does_not_import_verl_or_openrlhf():
    code = ("import sys, curator.integrations.verl_sampler, curator.integrations.openrlhf_reward;"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('verl', 'openrlhf', 'duckdb')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=curator_env(), timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr


# ----------------------------------------------------------------------------- OpenRLHF reward file

TEMPLATE = "<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n"


def problem(i: int) -> str:
    return f"A box holds {i} red and {i + 4} blue marbles. How many marbles are in the box?"


def load_reward_file():
    """Exactly how OpenRLHF loads a --remote_rm_url ending in .py."""
    path = Path(vs.__file__).with_name("openrlhf_reward.py")
    spec = importlib.util.spec_from_file_location("reward_func", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_builtin_verifier_reward_has_openrlhfs_shape(tmp_path, monkeypatch):
    monkeypatch.setenv("CURATOR_OUTCOMES_DIR", str(tmp_path / "out"))
    monkeypatch.delenv("CURATOR_REWARD_FUNC", raising=False)
    m = load_reward_file()
    p = TEMPLATE.format(problem(1))
    # an older OpenRLHF batch call: queries are prompt + response, special tokens kept
    out = m.reward_func([p + "1 + 5 = \\boxed{6}<|im_end|>", p + "so \\boxed{7}<|im_end|>"], [p, p], ["6", "6"])
    assert set(out) == {"rewards", "scores", "extra_logs"}
    assert out["rewards"].tolist() == [1.0, 0.0] and out["scores"].tolist() == [1.0, 0.0]
    assert out["rewards"].dtype == torch.float32 and out["extra_logs"]["curator_correct"].tolist() == [1.0, 0.0]
    recs = [json.loads(x) for x in next((tmp_path / "out").glob("outcomes-rank0-pid*.jsonl")).read_text().splitlines()]
    assert [r["correct"] for r in recs] == [True, False] and recs[0]["step_source"] == "call_counter"
    assert recs[0]["prompt"] == p and recs[0]["completion_chars"] == len("1 + 5 = \\boxed{6}<|im_end|>")


def test_user_reward_outcomes_become_history_through_the_cli(tmp_path, monkeypatch, ws_path):
    with Workspace(ws_path) as w:
        w.write("examples", pd.DataFrame({
            "example_id": [f"m{i}" for i in range(4)], "dataset": "marbles", "row_index": list(range(4)),
            "prompt": [problem(i) for i in range(4)], "answer": [str(2 * i + 4) for i in range(4)],
            "solution": None, "meta": "{}", "ingested_at": utcnow()}))
    user = tmp_path / "my_reward.py"
    user.write_text("import json, torch\n"
                    "def answer(label):\n"
                    "    return json.loads(label)['answer'] if label.startswith('{') else label\n"
                    "def reward_func(queries, prompts, labels, **kwargs):\n"
                    "    r = torch.tensor([1.0 if q.removesuffix('<|im_end|>').endswith(' ' + answer(l)) else 0.0\n"
                    "                      for q, l in zip(queries, labels)])\n"
                    "    return {'rewards': r * 2 - 1, 'scores': r, 'extra_logs': {'mine': r}}\n")
    out_dir = tmp_path / "outcomes"
    monkeypatch.setenv("CURATOR_OUTCOMES_DIR", str(out_dir))
    monkeypatch.setenv("CURATOR_REWARD_FUNC", f"{user}:reward_func")
    monkeypatch.setenv("CURATOR_CALLS_PER_STEP", "4")  # current OpenRLHF: one call per sample
    m = load_reward_file()
    calls = 0
    for step in range(2):
        for i in (0, 1):
            for k in range(2):
                p = TEMPLATE.format(problem(i))
                label = str(2 * i + 4) if i == 0 else json.dumps({"answer": str(2 * i + 4), "example_id": "m1"})
                answer = (label if i == 0 else str(2 * i + 4)) if k == 0 else "0"
                res = m.reward_func([p + f"The total is {answer}<|im_end|>"], [p], [label])
                calls += 1
                if i == 0:  # the user's function output is returned unchanged
                    assert res["rewards"].tolist() == ([1.0] if k == 0 else [-1.0]) and "mine" in res["extra_logs"]
    # a step passed by the trainer wins over the call counter
    m.reward_func([TEMPLATE.format(problem(3)) + "10"], [TEMPLATE.format(problem(3))], ["16"], global_step=7)
    (out_dir / "notes.txt").write_text("not an outcome file")

    r = subprocess.run([sys.executable, "-m", "curator.cli", "-w", str(ws_path), "import", str(out_dir),
                        "--format", "openrlhf"], capture_output=True, text=True, env=curator_env(), timeout=120)
    assert r.returncode == 0, r.stderr
    assert "9 records, 9 matched, 5 history rows over 3 steps and 3 examples, 0 unmatched" in r.stdout
    with Workspace(ws_path, read_only=True) as w:
        hist = w.df("SELECT step, example_id, n, n_correct FROM history ORDER BY step, example_id")
        backend = w.sql("SELECT backend FROM runs").fetchone()[0]
    assert backend == "openrlhf"
    assert hist.values.tolist() == [[0, "m0", 2, 1], [0, "m1", 2, 1], [1, "m0", 2, 1], [1, "m1", 2, 1],
                                    [7, "m3", 1, 0]]
