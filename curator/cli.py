"""The `curator` command: a thin layer over the library.

Each command builds its stage's config dataclass from the flags, opens the
workspace, calls the stage function and prints the summary it returns. Heavy
modules (torch, transformers, great-expectations, datasets) are imported inside
the commands that need them, so `curator --help` stays fast.

Errors the user can act on (`CuratorError`) print one line and exit 2.
"""

from __future__ import annotations

import sys

import click

from curator import __version__
from curator.errors import CuratorError
from curator.importers.stage import FORMATS as IMPORT_FORMATS


class Ctx:
    def __init__(self, workspace: str, quiet: bool):
        self.workspace = workspace
        self.quiet = quiet
        self._output = None

    @property
    def output(self):
        if self._output is None:
            from curator.console import Output

            self._output = Output(self.quiet)
        return self._output

    def open(self, read_only: bool = False):
        from curator.store import Workspace

        return Workspace(self.workspace, read_only=read_only)


pass_ctx = click.make_pass_decorator(Ctx)


def _pair(value: str | None, sep: str, cast, flag: str, example: str) -> tuple | None:
    """Parse `a<sep>b` option values such as --shard 0/4 or --pass-band 0.1:0.9."""
    if not value:
        return None
    try:
        a, b = (cast(x) for x in value.split(sep))
    except ValueError:
        raise CuratorError(f"{flag} must look like {example}, got {value!r}") from None
    return a, b


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--workspace", "-w", default="curator.duckdb", show_default=True,
              envvar="CURATOR_WORKSPACE", help="The DuckDB workspace file (env CURATOR_WORKSPACE).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars or tables; summary lines only.")
@click.version_option(__version__, prog_name="curator")
@click.pass_context
def cli(ctx: click.Context, workspace: str, quiet: bool) -> None:
    """curator: which examples can RL with verifiable rewards learn from, which never, and why.

    Stages read and write tables in one DuckDB workspace; run them in order or
    let `curator demo` run them all on the embedded arithmetic lab.
    """
    ctx.obj = Ctx(workspace, quiet)


@cli.command()
@click.argument("source")
@click.option("--name", help="Dataset name in the workspace (default: from SOURCE).")
@click.option("--split", help="Hub split (default train), or a file stem inside a folder.")
@click.option("--revision", help="Hub revision (branch, tag or commit).")
@click.option("--prompt-field", help="Field holding the prompt (dotted paths allowed).")
@click.option("--answer-field", help="Field holding the gold answer (dotted paths allowed).")
@click.option("--id-field", help="Keep this field as example_id instead of a content hash.")
@click.option("--solution-field", help="Field holding a reference solution or trace.")
@click.option("--max-prompt-chars", type=int, default=20_000, show_default=True)
@click.option("--max-answer-chars", type=int, default=1_000, show_default=True)
@pass_ctx
def ingest(c: Ctx, source: str, **opts) -> None:
    """Read SOURCE (a .jsonl/.json/.parquet/.csv file, a folder, or a Hub dataset), validate, store.

    Rows that fail validation go to the `quarantine` table with a reason; the
    rest become `examples`. Re-ingesting the same data changes nothing.
    """
    from curator.data.ingest import IngestConfig, ingest as run_ingest

    config = IngestConfig(source=source, **opts)
    with c.open() as ws:
        s = run_ingest(ws, config)
    report_ingest(c.output, s)


def report_ingest(out, s) -> None:
    m = s.mapping
    out.info(
        f"{s.dataset}: schema {m['schema']}, prompt <- {m['prompt_field']}, answer <- {m['answer_field']}"
        + (f", id <- {m['id_field']}" if m["id_field"] else "")
    )
    rows = [("kept (new)", s.n_new), ("kept (already present)", s.n_already_present)]
    rows += [(f"quarantined: {k}", v) for k, v in s.reasons.most_common()]
    out.table(f"ingest {s.source}", ["rows", "count"], rows)
    out.line(
        f"ingested {s.dataset}: {s.n_rows} rows, {s.n_new} new, {s.n_already_present} already present, "
        f"{s.n_quarantined} quarantined"
    )


@cli.command("verify")
@click.option("--dataset", help="Only this dataset (default: all).")
@click.option("--timeout", type=float, default=5.0, show_default=True, help="Seconds per solution.")
@pass_ctx
def verify_cmd(c: Ctx, dataset: str | None, timeout: float) -> None:
    """Verify each example's reference solution against its own gold answer (math-verify)."""
    from curator.data.references import ReferenceConfig, check_references

    with c.open(read_only=True) as ws:
        n = ws.sql("SELECT count(*) FROM examples WHERE solution IS NOT NULL"
                   + (" AND dataset = ?" if dataset else ""), [dataset] if dataset else []).fetchone()[0]
        with c.output.progress("verifying reference solutions", n) as advance:
            s = check_references(ws, ReferenceConfig(dataset=dataset, timeout=timeout), advance)
    report_references(c.output, s)


def report_references(out, s) -> None:
    out.table("reference solutions vs gold answers", ["status", "examples"],
              sorted(s.statuses.items(), key=lambda kv: -kv[1]))
    for status, items in s.failures.items():
        for eid, ans, got in items:
            out.info(f"  {status}: {eid} gold={ans[:60]!r} got={got[:60]!r}")
    checked = sum(s.statuses.values())
    out.line(
        f"verified {checked} reference solutions: {s.statuses.get('correct', 0)} correct"
        + "".join(f", {v} {k}" for k, v in s.statuses.items() if k != "correct")
        + (f" ({s.n_without_solution} examples have no reference solution)" if s.n_without_solution else "")
    )


def _train_options(f):
    opts = [
        click.option("--model", default=None, help="Checkpoint folder or Hub id (default: the lab model)."),
        click.option("--dataset", default=None, help="Only examples of this dataset (default: all)."),
        click.option("--max-new-tokens", type=int, default=48, show_default=True),
        click.option("--eval-n", type=int, default=32, show_default=True, help="Samples per example for pass@1."),
        click.option("--eval-temperature", type=float, default=0.7, show_default=True),
        click.option("--threads", type=int, default=1, show_default=True, help="torch threads per process."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _model_or_lab(model):
    from curator.pipeline import LAB_MODEL

    return model or str(LAB_MODEL)


@cli.command()
@_train_options
@click.option("--seeds", default="1,42,37", show_default=True, help="One GRPO run per seed.")
@click.option("--name", default=None, help="Run name prefix (default: grpo-<config hash>).")
@click.option("--steps", type=int, default=150, show_default=True)
@click.option("--prompts-per-step", type=int, default=32, show_default=True, help="Groups per update (P).")
@click.option("--group-size", "-G", type=int, default=8, show_default=True)
@click.option("--lr", type=float, default=1e-4, show_default=True)
@click.option("--clip-high", type=float, default=0.2, show_default=True, help="0.28 for clip-higher.")
@click.option("--kl-coef", type=float, default=0.0, show_default=True, help="k3 KL to the initial policy.")
@click.option("--minibatches", type=int, default=1, show_default=True, help="Optimizer steps per batch.")
@click.option("--micro-rows", type=int, default=32, show_default=True,
              help="Rows per forward/backward in the update, sorted by length (lower it if a GPU runs out of memory).")
@click.option("--max-rounds", type=int, default=4, show_default=True,
              help="Dynamic-sampling generation rounds per step before giving up on a full batch.")
@click.option("--no-dynamic-sampling", is_flag=True, help="Keep zero-variance groups in the batch.")
@click.option("--lora", is_flag=True, help="Train a LoRA adapter (r 16, alpha 32) instead of all weights.")
@click.option("--keep-completions", default="correct", show_default=True,
              help="Completions to store: none, correct, all, or k per example per step.")
@click.option("--checkpoint-every", type=int, default=25, show_default=True)
@click.option("--eval-every", type=int, default=0, show_default=True, help="Also evaluate every K steps.")
@click.option("--parallel", type=int, default=2, show_default=True, help="Runs at once, one process each.")
@pass_ctx
def train(c: Ctx, model, dataset, max_new_tokens, eval_n, eval_temperature, threads, seeds, name, steps,
          prompts_per_step, group_size, lr, clip_high, kl_coef, minibatches, micro_rows, max_rounds,
          no_dynamic_sampling, lora, keep_completions, checkpoint_every, eval_every, parallel) -> None:
    """GRPO on the workspace's examples, one run per seed, with pass@1 before and after.

    Re-running the same command skips finished runs and resumes unfinished ones
    from their last complete checkpoint.
    """
    from curator.train import EvalConfig, TrainConfig, train as run_train

    try:
        seed_list = tuple(int(s) for s in seeds.split(",") if s.strip())
    except ValueError:
        raise CuratorError(f"--seeds must be integers separated by commas, got {seeds!r}") from None
    config = TrainConfig(
        model=_model_or_lab(model), seeds=seed_list, dataset=dataset, name=name, steps=steps,
        prompts_per_step=prompts_per_step, group_size=group_size, max_new_tokens=max_new_tokens, lr=lr,
        clip_high=clip_high, kl_coef=kl_coef, minibatches=minibatches, micro_rows=micro_rows, max_rounds=max_rounds,
        dynamic_sampling=not no_dynamic_sampling, lora=lora, keep_completions=keep_completions,
        eval=EvalConfig(n=eval_n, temperature=eval_temperature, every=eval_every),
        checkpoint_every=checkpoint_every, parallel=parallel, threads=threads,
    )
    with c.open() as ws:
        summary = run_training(c, ws, config)
    report_training(c.output, summary)


def run_training(c: Ctx, ws, config):
    from curator.train import train as run_train

    with c.output.runs_progress(config.steps) as bar:
        return run_train(ws, config, on_step=bar.step, on_progress=bar.progress)


def report_training(out, summary) -> None:
    out.table("GRPO runs", ["run", "seed", "status", "steps", "reward (first 10%)", "reward (last 10%)"],
              [(r.run_id, r.seed, r.status, r.steps_done,
                "" if r.mean_reward_first is None else f"{r.mean_reward_first:.3f}",
                "" if r.mean_reward_last is None else f"{r.mean_reward_last:.3f}") for r in summary.runs])
    out.line(f"trained {len(summary.runs)} runs; initial-model eval in run {summary.initial_run}")


@cli.command()
@_train_options
@click.option("--keep-completions", default="none", show_default=True)
@click.option("--backend", type=click.Choice(["hf", "openai", "vllm"]), default="hf", show_default=True,
              help="hf: transformers in this machine; openai: any /v1/completions server; vllm: offline engine.")
@click.option("--base-url", default=None, help="openai: the server, e.g. http://127.0.0.1:8000/v1.")
@click.option("--api-key-env", default="OPENAI_API_KEY", show_default=True,
              help="openai: environment variable holding the API key (the key is never printed or stored).")
@click.option("--concurrency", type=int, default=8, show_default=True, help="openai: requests in flight.")
@click.option("--tokenizer", default=None, help="openai: tokenizer for completion lengths (default: characters).")
@pass_ctx
def probe(c: Ctx, model, dataset, max_new_tokens, eval_n, eval_temperature, threads, keep_completions, backend,
          base_url, api_key_env, concurrency, tokenizer) -> None:
    """pass@1 of a model on the workspace's examples, without training (the cheap first look)."""
    from curator.train import EvalConfig, ProbeConfig, probe as run_probe

    if backend == "openai" and not model:
        raise CuratorError("--backend openai needs --model: the model name the server serves")
    config = ProbeConfig(model=model if backend == "openai" else _model_or_lab(model), dataset=dataset,
                         eval=EvalConfig(n=eval_n, temperature=eval_temperature),
                         max_new_tokens=max_new_tokens, keep_completions=keep_completions, threads=threads,
                         backend=backend, base_url=base_url, api_key_env=api_key_env, concurrency=concurrency,
                         tokenizer=tokenizer)
    with c.open() as ws:
        with c.output.runs_progress(0) as bar:
            run_id = run_probe(ws, config, on_progress=bar.progress)
        n, mean, zero, tau = ws.sql(
            "SELECT count(*), avg(n_correct / n), count(*) FILTER (WHERE n_correct = 0), "
            "count(*) FILTER (WHERE n_correct / n > 0.1) FROM evals WHERE run_id = ?", [run_id]).fetchone()
    c.output.line(f"probe {run_id}: {n} examples, mean pass@1 {mean:.3f}, {tau} above 0.1, {zero} never correct")


@cli.command()
@click.option("--tau", type=float, default=0.1, show_default=True, help="Threshold on pass@1.")
@click.option("--runs", default=None,
              help="Train (or probe-linked import) runs to intersect, comma-separated (default: all finished "
                   "train runs).")
@click.option("--k", "ks", default="1,4,8,32", show_default=True, help="pass@k values to score.")
@pass_ctx
def label(c: Ctx, tau: float, runs: str | None, ks: str) -> None:
    """Learnability labels (easy, learnable, unlearnable, never_solved, unstable) and continuous scores."""
    from curator.analysis.labels import LabelConfig, label as run_label

    try:
        k = tuple(int(x) for x in ks.split(",") if x.strip())
    except ValueError:
        raise CuratorError(f"--k must be integers separated by commas, got {ks!r}") from None
    config = LabelConfig(tau=tau, runs=tuple(r.strip() for r in runs.split(",")) if runs else (), k=k)
    with c.open() as ws:
        s = run_label(ws, config)
    report_labels(c.output, s)


def report_labels(out, s) -> None:
    total = sum(s.counts.values())
    out.table(f"labels {s.label_set} (tau {s.tau}, {len(s.runs)} runs)", ["label", "examples", "share"],
              [(k, v, f"{v / max(1, total):.0%}") for k, v in s.counts.items()])
    out.line(f"labelled {total} examples as {s.label_set}: "
             + ", ".join(f"{v} {k}" for k, v in s.counts.items())
             + (f" ({s.n_unlabelled} without an eval in every run)" if s.n_unlabelled else ""))


@cli.command()
@click.option("--label-set", default=None, help="Label set whose groups to compare (default: the latest).")
@click.option("--model", default=None, help="Model to take gradients of (default: the runs' initial model).")
@click.option("--dim", type=int, default=8192, show_default=True, help="Rademacher projection size; 0 = exact.")
@click.option("--max-rollouts", type=int, default=20, show_default=True, help="Correct rollouts per example.")
@click.option("--shard", default=None, help="i/n: compute only shard i of n (with --shard-dir).")
@click.option("--shard-dir", default=None, help="Where shards write their parquet files.")
@click.option("--merge", "merge_dir", default=None, help="Load shard files from this folder, then compare.")
@click.option("--threads", type=int, default=1, show_default=True)
@pass_ctx
def gradsim(c: Ctx, label_set, model, dim, max_rollouts, shard, shard_dir, merge_dir, threads) -> None:
    """Per-example LoRA-gradient vectors and their cosine similarity within and between label groups."""
    from curator.analysis.gradsim import GradSimConfig, gradsim as run_gradsim

    shard_t = _pair(shard, "/", int, "--shard", "0/4")
    config = GradSimConfig(label_set=label_set, model=model, dim=dim, max_rollouts=max_rollouts, shard=shard_t,
                           shard_dir=shard_dir, merge_dir=merge_dir, threads=threads)
    with c.open(read_only=bool(shard_t)) as ws:
        with c.output.progress("gradients", None) as advance:
            s = run_gradsim(ws, config, advance)
    report_gradsim(c.output, s)


def report_gradsim(out, s) -> None:
    if s.shard_file:
        out.line(f"shard: {s.computed} example gradients written to {s.shard_file}")
        return
    groups = list(s.group_matrix)
    out.table(f"mean cosine similarity between groups ({s.config_id}, labels {s.label_set})",
              ["group", *groups], [(a, *(f"{s.group_matrix[a][b]:+.4f}" for b in groups)) for a in groups])
    au = s.auroc_unlearnable_vs_learnable
    out.line(f"gradsim {s.config_id}: {s.computed} computed, {s.skipped} already stored, {s.without_rollouts} "
             "without a correct rollout; mean similarity per group: "
             + ", ".join(f"{g} {v:+.4f}" for g, v in s.group_mean.items())
             + (f"; AUROC of low similarity for unlearnable vs learnable {au:.3f}" if au is not None else ""))


@cli.command("import")
@click.argument("source")
@click.option("--format", "fmt", required=True, type=click.Choice(IMPORT_FORMATS),
              help="plain: jsonl/json/parquet logs; verl: trainer.rollout_data_dir; openrlhf: the outcome files "
                   "of curator.integrations.openrlhf_reward; trl-outcomes / trl-completions: TRL's logs.")
@click.option("--id-field", default=None, help="plain: field holding the workspace example id (dotted paths work).")
@click.option("--prompt-field", default=None, help="plain: field holding the prompt.")
@click.option("--step-field", default="step", show_default=True, help="plain: field holding the step.")
@click.option("--reward-field", default=None, help="plain: field holding the reward.")
@click.option("--correct-field", default=None,
              help="plain: field holding the verdict; verl: reward extra key holding it (default: acc).")
@click.option("--length-field", default=None, help="plain: field holding the completion length in tokens.")
@click.option("--threshold", type=float, default=0.5, show_default=True,
              help="correct = reward > threshold when no verdict is logged.")
@click.option("--index-key", default=None,
              help="verl: reward extra key (returned by your compute_score) holding the example id.")
@click.option("--prompt-template", default=None,
              help="The chat template around the prompt, with {prompt}, stripped before matching.")
@click.option("--include-validation", is_flag=True, help="verl: import files that look like validation dumps.")
@click.option("--run-name", default=None, help="run_id of the import (default: from the format and the path).")
@click.option("--model", default=None, help="The model the trainer trained, recorded with the run.")
@click.option("--keep-completions", is_flag=True, help="Also store logged completions in `rollouts`.")
@click.option("--initial-probe", default=None,
              help="Probe run of the initial model: with --final-probe, lets `curator label` label this run.")
@click.option("--final-probe", default=None, help="Probe run of the trainer's final checkpoint.")
@pass_ctx
def import_cmd(c: Ctx, source, fmt, id_field, prompt_field, step_field, reward_field, correct_field, length_field,
               threshold, index_key, prompt_template, include_validation, run_name, model, keep_completions,
               initial_probe, final_probe) -> None:
    """Another trainer's per-completion outcomes (verl, OpenRLHF, TRL, plain logs) -> an `import` run's history.

    Re-importing the same SOURCE (same format and path) replaces the earlier
    import. Prompts a step does not log (dynamic sampling) stay unknown.
    """
    from curator.importers.plain import describe_mapping
    from curator.importers.stage import ImportConfig, import_source

    config = ImportConfig(
        source=source, format=fmt, id_field=id_field, prompt_field=prompt_field, step_field=step_field,
        reward_field=reward_field, correct_field=correct_field, length_field=length_field, threshold=threshold,
        index_key=index_key, prompt_template=prompt_template, include_validation=include_validation,
        run_name=run_name, model=model, keep_completions=keep_completions, initial_probe=initial_probe,
        final_probe=final_probe)
    with c.open() as ws:
        s = import_source(ws, config)
    mapping = s.mapping
    if mapping:
        c.output.info(f"{source} ({fmt}): {describe_mapping(mapping)}")
    c.output.table(f"import {s.run_id}", ["records", "count"], [
        ("read", s.n_records), ("matched to examples", s.n_matched), ("unmatched", s.unmatched),
        ("history rows (step x example)", s.n_rows), ("steps", s.n_steps), ("examples", s.n_examples)])
    for w in s.warnings:
        c.output.line(f"warning: {w}")
    if s.unmatched_samples:
        c.output.line("unmatched, e.g.: " + "; ".join(repr(x) for x in s.unmatched_samples))
    c.output.line(f"imported {s.run_id} ({'replaced the earlier import of this source' if s.replaced else 'new run'}):"
                  f" {s.n_records} records, {s.n_matched} matched, {s.n_rows} history rows over {s.n_steps} steps "
                  f"and {s.n_examples} examples, {s.unmatched} unmatched")


@cli.command("judge")
@click.option("--judge", "judge_name", type=click.Choice(["step_checker", "openai"]), default="step_checker",
              show_default=True, help="step_checker: the lab's offline checker; openai: any chat endpoint.")
@click.option("--base-url", default=None, help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1.")
@click.option("--model", default=None, help="Judge model name at that endpoint.")
@click.option("--api-key-env", default="OPENAI_API_KEY", show_default=True,
              help="Name of the environment variable holding the API key (the key itself is never printed).")
@click.option("--k", default=4, show_default=True, help="Correct rollouts judged per example.")
@click.option("--per-group", default=0, show_default=True, help="Judge only N examples per label group (0: all).")
@click.option("--label-set", default=None, help="Label set for --per-group and the summary (default: latest).")
@click.option("--timeout", default=30.0, show_default=True, help="Seconds per request.")
@click.option("--max-retries", default=3, show_default=True, help="Retries on 429, 5xx and timeouts.")
@click.option("--concurrency", default=4, show_default=True, help="Requests in flight.")
@pass_ctx
def judge_cmd(c: Ctx, judge_name, base_url, model, api_key_env, k, per_group, label_set, timeout, max_retries,
              concurrency) -> None:
    """Score the reasoning (0-5) of stored correct rollouts; per-example mean and spread go beside the labels."""
    from curator.judge.stage import JudgeConfig, judge as run_judge

    config = JudgeConfig(judge=judge_name, base_url=base_url, model=model, api_key_env=api_key_env, k=k,
                         per_group=per_group, label_set=label_set, timeout=timeout, max_retries=max_retries,
                         concurrency=concurrency)
    with c.open() as ws:
        with c.output.progress("judging", None) as advance:
            s = run_judge(ws, config, advance)
    report_judge(c.output, s)


def report_judge(out, s) -> None:
    if s.by_group:
        out.table(f"reasoning quality by label ({s.judge}, rubric {s.rubric_version})",
                  ["label", "judged rollouts", "mean score", "std"],
                  [(g, n, f"{m:.2f}", f"{sd:.2f}") for g, (n, m, sd) in s.by_group.items()])
    out.line(f"judged {s.items} rollouts with {s.judge}"
             + (f" ({s.model})" if s.model else "") + ": "
             + ", ".join(f"{v} {k}" for k, v in s.statuses.items() if v)
             + f"; cost: {s.requests} requests, {s.cache_hits} cache hits"
             + (f", {s.prompt_tokens} prompt + {s.completion_tokens} completion tokens"
                if s.prompt_tokens or s.completion_tokens else ""))


@cli.command("predict")
@click.option("--label-set", default=None,
              help="Labels to learn (default: the latest); with --train-runs, the labels held-out examples are "
                   "also scored against.")
@click.option("--probe-run", default=None, help="Run whose initial eval gives the features (default: the labels').")
@click.option("--model", "model_kind", type=click.Choice(["forest", "boosting", "logreg"]), default="forest",
              show_default=True, help="Random forest, gradient boosting or logistic regression (balanced classes).")
@click.option("--folds", default=5, show_default=True, help="Stratified cross-validation folds.")
@click.option("--seed", default=0, show_default=True)
@click.option("--min-per-label", default=10, show_default=True,
              help="Rarer labels are merged into 'other' (or left out when still too few).")
@click.option("--holdout", type=float, default=None,
              help="Also hold out this fraction of the labelled examples and score on it (0.25 with --train-runs).")
@click.option("--train-runs", default=None,
              help="Learn labels computed over only these train runs (comma-separated), e.g. two of three seeds.")
@click.option("--tau", type=float, default=None, help="Threshold for --train-runs labels (default: the label set's).")
@click.option("--features", default=None, help="Only these features, by name or prefix, comma-separated.")
@pass_ctx
def predict_cmd(c: Ctx, label_set, probe_run, model_kind, folds, seed, min_per_label, holdout, train_runs, tau,
                features) -> None:
    """Predict learnability labels from probe-time features; AUROC per label; label unlabelled probed examples."""
    from curator.analysis.predict import PredictConfig, predict as run_predict

    split = lambda v: tuple(x.strip() for x in v.split(",") if x.strip()) if v else ()
    config = PredictConfig(label_set=label_set, probe_run=probe_run, model=model_kind, folds=folds, seed=seed,
                           min_per_label=min_per_label, test_size=holdout if holdout is not None else 0.25,
                           holdout=holdout is not None, train_runs=split(train_runs), tau=tau,
                           features=split(features) or None)
    with c.open() as ws:
        s = run_predict(ws, config)
    report_predict(c.output, s)


def report_predict(out, s) -> None:
    ci = lambda v, band: "" if v is None else f"{v:.3f}" + (f" [{band[0]:.2f}, {band[1]:.2f}]" if band else "")
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"
    columns = ["label", "n", "AUROC (CV) [95% CI]", "not easy"]
    if s.n_holdout:
        columns += ["held-out n", "held-out AUROC", "not easy"]
    if s.reference_label_set:
        columns += [f"n in {s.reference_label_set}", "held-out AUROC vs it", "not easy"]
    rows = []
    for m in s.per_label:
        row = [m.label, m.n, ci(m.auroc, m.ci), "" if m.auroc_not_easy is None else fmt(m.auroc_not_easy)]
        if s.n_holdout:
            row += [m.holdout_n, ci(m.holdout_auroc, m.holdout_ci),
                    "" if m.holdout_auroc_not_easy is None else fmt(m.holdout_auroc_not_easy)]
        if s.reference_label_set:
            row += [m.reference_n, ci(m.reference_auroc, m.reference_ci),
                    "" if m.reference_auroc_not_easy is None else fmt(m.reference_auroc_not_easy)]
        rows.append(row)
    learned = s.label_set + (f" (runs {', '.join(s.train_runs)})" if s.train_runs else "")
    out.table(f"learnability predictor {s.prediction_set}: {s.model}, labels {learned}, features of {s.probe_run} "
              "(one-vs-rest AUROC; 'not easy': among the examples not labelled easy)", columns, rows)
    out.info(f"features ({len(s.features)}): {', '.join(s.features)}")
    for name, why in s.not_used.items():
        out.info(f"  not used: {name}: {why}")
    for note in s.notes:
        out.info(note)
    for warning in s.warnings:
        out.line(f"warning: {warning}")
    per = lambda attr: ", ".join(f"{m.label} {fmt(getattr(m, attr))}" for m in s.per_label)
    out.line(f"{s.folds}-fold CV on {s.n_cv} labelled examples: macro AUROC {fmt(s.macro_auroc)}, "
             f"accuracy {s.accuracy:.3f}; {per('auroc')}")
    if s.n_holdout:
        out.line(f"held out {s.n_holdout}: macro AUROC {fmt(s.holdout_macro_auroc)}, accuracy "
                 f"{fmt(s.holdout_accuracy)}; {per('holdout_auroc')}")
    if s.reference_label_set:
        out.line(f"held out vs {s.reference_label_set}: macro AUROC {fmt(s.reference_macro_auroc)}, accuracy "
                 f"{fmt(s.reference_accuracy)} (the two label sets agree on {fmt(s.reference_agreement)} of them); "
                 f"{per('reference_auroc')}")
    out.line(f"prediction set {s.prediction_set}: {s.n_predicted} unlabelled probed examples labelled in "
             "`predictions`" + (" (" + ", ".join(f"{v} {k}" for k, v in s.predicted.items() if v) + ")"
                                if s.n_predicted else "") + "; metrics in `prediction_sets`"
             + (f"; unlabelled features from {', '.join(s.apply_runs)}" if s.n_predicted and s.apply_runs else ""))


@cli.command("export")
@click.option("--out", required=True, help="Folder to write (replaced if it exists).")
@click.option("--name", default="curated", show_default=True, help="Dataset name in the card.")
@click.option("--split", "split_name", default="train", show_default=True)
@click.option("--drop", default=None, help="Labels to drop, e.g. unlearnable,never_solved.")
@click.option("--keep", default=None, help="Labels to keep, e.g. learnable,easy (others are dropped).")
@click.option("--pass-band", default=None, help="lo:hi, keep examples whose initial pass@1 is in [lo, hi].")
@click.option("--where", default=None, help="SQL predicate over label and score columns, e.g. 'limr > 0.5'.")
@click.option("--order", default="original", show_default=True,
              type=click.Choice(["original", "pass", "learnability", "limr", "gradsim", "staged", "mirrored-j"]))
@click.option("--format", "formats", default="hf,parquet,jsonl,verl,trl", show_default=True)
@click.option("--bare", is_flag=True, help="Leave label and score columns out.")
@click.option("--label-set", default=None)
@click.option("--license", "license_", default=None, help="License for the card's metadata.")
@click.option("--push-to-hub", default=None, help="ORG/NAME: upload to the Hub (token from HF_TOKEN or login).")
@click.option("--private", is_flag=True, help="Create the Hub repository private.")
@click.option("--dry-run", is_flag=True, help="Write the files that would be uploaded under OUT/hub; send nothing.")
@pass_ctx
def export_cmd(c: Ctx, out, name, split_name, drop, keep, pass_band, where, order, formats, bare, label_set,
               license_, push_to_hub, private, dry_run) -> None:
    """Write a filtered, curriculum-ordered dataset (every drop recorded with its reason) and its card."""
    from curator.export.stage import ExportConfig, export as run_export

    band = _pair(pass_band, ":", float, "--pass-band", "0.1:0.9")
    split = lambda v: [x.strip() for x in v.split(",") if x.strip()] if v else []
    config = ExportConfig(out=out, name=name, split=split_name, drop=split(drop), keep=split(keep), pass_band=band,
                          where=where, order=order, formats=split(formats), bare=bare, label_set=label_set,
                          license=license_, push_to_hub=push_to_hub, private=private, dry_run=dry_run)
    with c.open() as ws:
        s = run_export(ws, config)
    report_export(c.output, s)


def report_export(out, s) -> None:
    out.table(f"export {s.export_id}", ["rows", "count"],
              [("input", s.n_in), ("kept", s.n_kept), *((f"dropped: {r}", n) for r, n in s.drops.most_common())])
    out.line(f"exported {s.n_kept} of {s.n_in} examples to {s.pushed or s.out} ({len(s.drops)} drop reasons, "
             f"{sum(s.drops.values())} rows dropped)")


@cli.command("augment")
@click.option("--method", type=click.Choice(["lab-variants", "llm-similar", "llm-decompose"]),
              default="lab-variants", show_default=True)
@click.option("--labels", default="learnable,unlearnable", show_default=True, help="Augment examples with these labels.")
@click.option("--per-example", default=2, show_default=True)
@click.option("--name", default="augmented", show_default=True, help="Dataset name of the new rows.")
@click.option("--out", default="curator-augment", show_default=True, help="Folder for the generated jsonl.")
@click.option("--base-url", default=None, help="OpenAI-compatible endpoint for the llm methods.")
@click.option("--model", default=None, help="Generator model.")
@click.option("--solver-model", default=None, help="Independent solver model (default: the generator).")
@click.option("--api-key-env", default="OPENAI_API_KEY", show_default=True)
@click.option("--seed", default=0, show_default=True)
@pass_ctx
def augment_cmd(c: Ctx, method, labels, per_example, name, out, base_url, model, solver_model, api_key_env,
                seed) -> None:
    """New problems from chosen examples (answer-checked), with parent_id / method / generator, ingested."""
    from curator.export.augment import AugmentConfig, augment as run_augment

    config = AugmentConfig(method=method, labels=[x.strip() for x in labels.split(",") if x.strip()],
                           per_example=per_example, name=name, out=out, seed=seed, base_url=base_url, model=model,
                           solver_model=solver_model, api_key_env=api_key_env)
    with c.open() as ws:
        s = run_augment(ws, config)
    if s.ingest is not None:
        report_ingest(c.output, s.ingest)
    c.output.line(f"augmented {s.parents} examples: {s.proposed} proposed, {s.kept} kept"
                  + "".join(f", {v} rejected ({k})" for k, v in s.rejected.items() if v))


@cli.command("report")
@click.option("--out", default="report.html", show_default=True, help="HTML file to write (replaced atomically).")
@click.option("--label-set", default=None, help="Label set to report (default: the latest).")
@click.option("--top-n", default=5, show_default=True, help="Most telling examples shown per label group.")
@pass_ctx
def report_cmd(c: Ctx, out: str, label_set: str | None, top_n: int) -> None:
    """One self-contained HTML report of the workspace: opens offline, says what is wrong with the data."""
    from curator.reports import ReportConfig, build_report

    config = ReportConfig(out=out, label_set=label_set, top_n=top_n)
    with c.open(read_only=True) as ws:
        s = build_report(ws, config)
    c.output.line(f"wrote {s.path} ({s.bytes / 1e6:.2f} MB; sections: {', '.join(s.sections) or 'none'}; "
                  f"{s.seconds:.1f}s)")


@cli.command()
@pass_ctx
def info(c: Ctx) -> None:
    """Schema version and row count of every workspace table."""
    with c.open(read_only=True) as ws:
        version, counts = ws.schema_version(), ws.counts()
    c.output.line(f"{c.workspace}: schema version {version}")
    c.output.table("tables", ["table", "rows"], counts.items())


@cli.command()
@click.argument("query")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV instead of a table.")
@pass_ctx
def sql(c: Ctx, query: str, as_csv: bool) -> None:
    """Run a read-only SQL QUERY against the workspace."""
    import duckdb

    with c.open(read_only=True) as ws:
        try:
            frame = ws.df(query)
        except duckdb.Error as e:
            raise CuratorError(f"query failed: {str(e).splitlines()[0]}") from None
    if as_csv:
        click.echo(frame.to_csv(index=False), nl=False)
    else:
        c.output.table("", list(frame.columns), frame.astype(str).itertuples(index=False))


@cli.command()
@click.argument("dest", type=click.Path(dir_okay=False))
@pass_ctx
def snapshot(c: Ctx, dest: str) -> None:
    """Copy the workspace to DEST, checkpointed first so the copy is complete."""
    with c.open() as ws:
        path = ws.snapshot(dest)
    c.output.line(f"wrote {path}")


@cli.command()
@click.option("--data", "data_dir", default=None, help="Dataset to run on (default: the embedded lab data).")
@pass_ctx
def demo(c: Ctx, data_dir: str | None) -> None:
    """Run every stage on the embedded default and print where the results are."""
    from curator.pipeline import DemoConfig, run_demo

    run_demo(c, DemoConfig(data=data_dir))


@cli.group()
def lab() -> None:
    """The arithmetic lab: generated problems and a tiny model built on this machine."""


@lab.command("generate")
@click.option("--out", default=None, help="Folder for train.jsonl / eval.jsonl (default: data/lab).")
@pass_ctx
def lab_generate(c: Ctx, out: str | None) -> None:
    """Write the lab's train and eval splits as jsonl (deterministic)."""
    from curator.lab.config import LabConfig
    from curator.lab.data import write_splits
    from curator.pipeline import LAB_DATA

    for name, path in write_splits(LabConfig(), out or LAB_DATA).items():
        c.output.line(f"wrote {path} ({sum(1 for _ in open(path))} problems)")


@lab.command("bootstrap")
@click.option("--out", default=None, help="Checkpoint folder (default: data/lab/model).")
@click.option("--force", is_flag=True, help="Rebuild even if a checkpoint with the same config exists.")
@click.option("--threads", type=int, default=None, help="torch threads (default: the lab config's).")
@pass_ctx
def lab_bootstrap(c: Ctx, out: str | None, force: bool, threads: int | None) -> None:
    """Build the tiny model: tokenizer, config, supervised warm start on traces."""
    from dataclasses import replace

    from curator.lab.bootstrap import bootstrap
    from curator.lab.config import LabConfig
    from curator.pipeline import LAB_MODEL

    config = LabConfig() if threads is None else replace(LabConfig(), threads=threads)
    with c.output.progress("warm start", config.sft_steps) as advance:
        s = bootstrap(config, out or LAB_MODEL, force=force, on_step=lambda step, loss: advance())
    if s.reused:
        c.output.line(f"{s.path} is up to date (same lab config); --force rebuilds it")
    else:
        c.output.line(f"built {s.path}: {s.parameters:,} parameters, {s.size_bytes / 1e6:.1f} MB, "
                      f"final loss {s.final_loss:.3f}, {s.seconds:.0f}s")


@lab.command("inspect")
@click.option("--model", default=None, help="Checkpoint folder (default: data/lab/model).")
@click.option("--split", default="train", show_default=True, type=click.Choice(["train", "eval"]))
@click.option("-n", "n", default=32, show_default=True, help="Samples per problem at temperature 1.0.")
@click.option("--seed", default=0, show_default=True)
@pass_ctx
def lab_inspect(c: Ctx, model: str | None, split: str, n: int, seed: int) -> None:
    """Difficulty report: per bucket greedy accuracy, pass rate, and 0/some/all-correct shares."""
    from curator.lab.config import LabConfig
    from curator.lab.data import splits
    from curator.lab.inspect import inspect_model
    from curator.pipeline import LAB_MODEL

    problems = splits(LabConfig())[split]
    r = inspect_model(str(model or LAB_MODEL), problems, n=n, seed=seed)
    c.output.table(
        f"difficulty of the {split} pool ({len(problems)} problems, {n} samples at T=1.0)",
        ["bucket", "problems", "greedy acc", "pass rate", "0 correct", "some", f"all {n}"],
        [(b.bucket, b.problems, f"{b.greedy:.2f}", f"{b.pass_rate:.2f}", f"{b.share_zero:.0%}",
          f"{b.share_some:.0%}", f"{b.share_all:.0%}") for b in r.buckets],
    )
    c.output.line(
        f"{split} pool: {r.share_nearly_all:.0%} solved in >= 7/8 of {n} samples, "
        f"{r.share_reachable:.0%} hard but reachable (solved, in <= 10% of samples), "
        f"{r.share_never:.0%} never solved"
    )


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="curator", standalone_mode=False)
    except CuratorError as e:
        from curator.redact import redact

        click.echo(f"error: {redact(str(e))}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted; everything committed so far is kept in the workspace", err=True)
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
