"""The import stage: one source of another trainer's outcomes, in one format, into an `import` run.

    import_source(workspace, ImportConfig(source="rollouts/", format="verl", index_key="index"))

Reads the source with its format's reader (`plain`, `verl`, the OpenRLHF
outcome files, TRL's outcome files or completion logs), resolves templated
prompts against the workspace's examples, and hands the records to
`records.import_records`. The run id comes from the format and the source's
path (TRL formats use `curator.importers.trl`'s own, so the library and the
CLI import the same run), so importing the same source again replaces it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from curator.errors import CuratorError

FORMATS = ("plain", "verl", "openrlhf", "trl-outcomes", "trl-completions")


@dataclass
class ImportConfig:
    source: str
    format: str
    id_field: str | None = None  # plain: the workspace example id (dotted paths work)
    prompt_field: str | None = None  # plain
    step_field: str = "step"  # plain
    reward_field: str | None = None  # plain
    correct_field: str | None = None  # plain: the verdict; verl: the reward extra key holding it
    length_field: str | None = None  # plain: completion length in tokens
    threshold: float = 0.5  # correct = reward > threshold when no verdict is logged
    index_key: str | None = None  # verl: reward extra key holding the example id
    prompt_template: str | None = None  # the chat template around the prompt, with {prompt}
    include_validation: bool = False  # verl: import files that look like validation dumps
    run_name: str | None = None  # run_id of the import (default: from the format and the path)
    model: str | None = None  # the model the trainer trained, recorded with the run
    keep_completions: bool = False  # also store logged completions in `rollouts`
    initial_probe: str | None = None  # probe run of the initial model (with final_probe: labels)
    final_probe: str | None = None  # probe run of the trainer's final checkpoint

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise CuratorError(f"--format {self.format!r} is not one of {', '.join(FORMATS)}")
        plain_only = {"--id-field": self.id_field, "--prompt-field": self.prompt_field,
                      "--reward-field": self.reward_field, "--length-field": self.length_field,
                      "--step-field": None if self.step_field == "step" else self.step_field}
        given = [k for k, v in plain_only.items() if v]
        if self.format != "plain" and given:
            raise CuratorError(f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to --format plain"
                               + ("; for verl, name the id with --index-key" if self.format == "verl" else ""))
        if self.format != "verl" and (self.index_key or self.include_validation):
            raise CuratorError("--index-key and --include-validation apply to --format verl"
                               + ("; for plain logs name the id with --id-field" if self.format == "plain" else ""))
        if not Path(self.source).exists():
            raise CuratorError(f"{self.source}: no such file or folder")
        if bool(self.initial_probe) != bool(self.final_probe):
            raise CuratorError("--initial-probe and --final-probe go together: labels need pass@1 before and after")


def read_source(config: ImportConfig, examples):
    """(records, warnings) of the source, templated prompts resolved against `examples` (example_id, prompt)."""
    import pandas as pd

    from curator.importers.plain import read_plain, resolve_prompts
    from curator.importers.records import records_frame

    fmt, source = config.format, config.source
    if fmt == "verl":
        from curator.importers.verl import read_verl_dumps

        return read_verl_dumps(source, index_key=config.index_key, correct_key=config.correct_field,
                               threshold=config.threshold, prompt_template=config.prompt_template,
                               include_validation=config.include_validation, examples=examples)
    if fmt in ("plain", "openrlhf"):
        records, warnings = read_plain(
            source, id_field=config.id_field, prompt_field=config.prompt_field, step_field=config.step_field,
            reward_field=config.reward_field, correct_field=config.correct_field,
            length_field=config.length_field, threshold=config.threshold,
            pattern="outcomes-*.jsonl" if fmt == "openrlhf" and Path(source).is_dir() else None)
    elif fmt == "trl-outcomes":
        from curator.importers.trl import read_outcome_files

        records, warnings = read_outcome_files(source)
    else:
        from curator.importers.trl import read_trl_completions

        records, warnings = read_trl_completions(source, threshold=config.threshold)
    if not isinstance(records, pd.DataFrame):
        records = records_frame(list(records))
    records, more = resolve_prompts(records, examples, prompt_template=config.prompt_template)
    return records, list(warnings) + more


def import_source(ws, config: ImportConfig):
    """Read, match and write one source as an `import` run; the summary carries the field mapping used."""
    from curator.importers.plain import file_signature, fingerprint_files, list_files
    from curator.importers.records import import_records

    fmt, source = config.format, config.source
    records, warnings = read_source(config, ws.df("SELECT example_id, prompt FROM examples"))
    mapping = dict(records.attrs.get("mapping") or {})
    files = [Path(f) for f in records.attrs.get("files") or []]
    if not files:
        try:
            files = list_files(source)
        except CuratorError:
            files = []
    importer, fingerprint = fmt, fingerprint_files(fmt, source)
    if fmt.startswith("trl-"):  # the same run id as curator.importers.trl's own import functions
        from curator.importers import trl

        importer = trl.IMPORTER
        fingerprint = (trl.outcomes_fingerprint(source) if fmt == "trl-outcomes"
                       else trl.completions_fingerprint(source))
    s = import_records(
        ws, records, importer=importer, source=str(Path(source).resolve()), fingerprint=fingerprint,
        run_id=config.run_name, model=config.model, warnings=warnings, keep_completions=config.keep_completions,
        initial_probe=config.initial_probe, final_probe=config.final_probe,
        config={"format": fmt, "mapping": mapping, "files": file_signature(files), "threshold": config.threshold,
                "index_key": config.index_key, "prompt_template": config.prompt_template})
    s.mapping = mapping
    return s
