"""GPU check of the model side: greedy CUDA == CPU, sampling, GRPO (full; LoRA + KL + 2 minibatches), gradients.

    python scripts/gpu_check.py        # on a machine with CUDA; needs only torch, transformers, peft and this repo

Uses the lab model and a plain string reward (no math-verify, no DuckDB), so it runs on a bare GPU image.
"""
import json, re, time, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from curator.trainers.grpo import GRPOTrainer, GRPOConfig, Example
from curator.trainers.sampling import sample
from curator.trainers.gradients import GradConfig, attach_random_lora, rollout_gradients, reference_gradients
assert torch.cuda.is_available()
dev = "cuda"
tok = AutoTokenizer.from_pretrained("data/lab/model")
model = AutoModelForCausalLM.from_pretrained("data/lab/model").to(dev)
rows = [json.loads(l) for l in open("data/lab/train.jsonl")][:64]
ex = [Example(str(i), r["prompt"], r["answer"]) for i, r in enumerate(rows)]
g = sample(model, tok, [r["prompt"] for r in rows[:8]], n=1, temperature=0.0)
cpu = AutoModelForCausalLM.from_pretrained("data/lab/model")
gc = sample(cpu, tok, [r["prompt"] for r in rows[:8]], n=1, temperature=0.0)
print("greedy", [c[0].text for c in g[:3]], "cuda == cpu:", [c[0].text for c in g] == [c[0].text for c in gc])
s8 = sample(model, tok, [r["prompt"] for r in rows[:8]], n=4, temperature=1.0, seed=3)
print("sampled T=1 on cuda:", [c.text for c in s8[0]])
class O:
    def __init__(s, ok): s.status = "correct" if ok else "incorrect"; s.reward = 1.0 if ok else 0.0
def reward(texts, golds):
    out = []
    for t, a in zip(texts, golds):
        m = re.search(r"\\boxed\{(-?\d+)\}", t)
        out.append(O(bool(m) and m.group(1) == a))
    return out
for cfg in (GRPOConfig(prompts_per_step=16, group_size=8, seed=1), GRPOConfig(prompts_per_step=16, group_size=8, seed=1, lora=True, kl_coef=0.05, minibatches=2)):
    m = AutoModelForCausalLM.from_pretrained("data/lab/model").to(dev)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    tr = GRPOTrainer(m, tok, ex, reward, cfg)
    t = time.time()
    for _ in range(3):
        s = tr.step()
    print("grpo lora+kl+2mb" if cfg.lora else "grpo full", s, f"{(time.time()-t)/3:.2f}s/step")
net = attach_random_lora(AutoModelForCausalLM.from_pretrained("data/lab/model").to(dev), GradConfig())
p = [r["prompt"] for r in rows[:20]]; c = [r["solution"] for r in rows[:20]]
a = rollout_gradients(net, tok, p, c, torch.ones(20)); b = reference_gradients(net, tok, p, c, torch.ones(20))
print("gradients cuda batched vs reference max diff", (a - b).abs().max().item(), "scale", b.abs().max().item())
