"""The dataset card (README.md with YAML metadata) that says how an export was curated."""

from __future__ import annotations

from collections import Counter


def _size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return name
    return "n>1M"


def render_card(*, name: str, split: str, n_kept: int, n_in: int, drops: Counter, order: str, sources: list[dict],
                runs: list[dict], label_set: dict | None, label_counts: dict, filters: list[str], version: str,
                license: str | None = None) -> str:
    yaml = ["---"]
    if license:
        yaml.append(f"license: {license}")
    yaml += [
        "task_categories:", "- text-generation",
        "tags:", "- rlvr", "- grpo", "- curator", "- math",
        "size_categories:", f"- {_size_category(n_kept)}",
        "configs:", "- config_name: default", "  data_files:",
        f"  - split: {split}", f"    path: data/{split}-*.parquet",
        "---", "",
    ]
    body = [f"# {name}", "",
            f"{n_kept} of {n_in} examples, curated with curator {version}: examples were labelled by how "
            "GRPO training changed their pass@1, filtered, and ordered as described below.", "",
            "## Source", ""]
    for s in sources:
        body.append(f"- `{s['dataset']}`: {s['source']}" + (f", split {s['split']}" if s.get("split") else "")
                    + (f", revision {s['revision']}" if s.get("revision") else ""))
    body += ["", "## Training runs behind the labels", ""]
    for r in runs:
        body.append(f"- `{r['run_id']}`: model {r['model']}, seed {r['seed']}, {r['steps']} GRPO steps")
    if label_set:
        body += ["", f"Labels: set `{label_set['label_set']}`, tau = {label_set['tau']} on pass@1, intersected "
                 f"over {len(runs)} runs.", "", "| label | examples (before filtering) |", "|---|---|"]
        body += [f"| {k} | {v} |" for k, v in label_counts.items()]
    body += ["", "## Filters", ""]
    body += [f"- `{f}`" for f in filters] or ["- none"]
    if drops:
        body += ["", "| dropped because | rows |", "|---|---|"] + [f"| {r} | {c} |" for r, c in drops.most_common()]
    body += ["", "## Order", "", f"Rows are in `{order}` order (kept in every file).", "",
             "## Augmentation", "", "None.", ""]
    return "\n".join(yaml + body)
