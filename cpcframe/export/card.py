"""The model card (``README.md``) of an exported model.

What a researcher looking at a model repository expects to find, from the run's own
files: a Hugging Face Hub metadata header (``library_name``, ``tags``,
``pipeline_tag``, ``license`` when given), what the model is (method, components,
feature widths), the recipe's key settings, the training data and steps, the probe
table (``probe.json``) and ABX results (``abx.json``) when the run has them, the
training curves, how to load it (and, for speech models, how to use it in s3prl), the
files, and what to cite. Every table is GitHub-flavoured Markdown, as the Hub renders it.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from cpcframe.config import toml_io
from cpcframe.export.layout import ABX, ExportDir
from cpcframe.export.manifest import ComponentSource, Manifest

#: What to cite, by method (the critic's family).
CITATIONS = {
    "CPC": ("van den Oord, Li and Vinyals, *Representation Learning with Contrastive Predictive "
            "Coding*, arXiv:1807.03748 (2018)",
            "@article{oord2018cpc,\n  title={Representation Learning with Contrastive Predictive Coding},\n"
            "  author={van den Oord, Aaron and Li, Yazhe and Vinyals, Oriol},\n"
            "  journal={arXiv preprint arXiv:1807.03748},\n  year={2018}\n}"),
    "AMDIM": ("Bachman, Hjelm and Buchwalter, *Learning Representations by Maximizing Mutual "
              "Information Across Views*, NeurIPS 2019, arXiv:1906.00910",
              "@inproceedings{bachman2019amdim,\n  title={Learning Representations by Maximizing Mutual "
              "Information Across Views},\n  author={Bachman, Philip and Hjelm, R Devon and Buchwalter, "
              "William},\n  booktitle={Advances in Neural Information Processing Systems},\n  year={2019}\n}"),
}
#: ``[train]`` settings shown in the training table (the rest are in recipe.toml).
TRAIN_KEYS = ("lr", "betas", "weight_decay", "warmup_steps", "schedule", "grad_clip", "precision")
#: Summary metrics worth a reader's attention, in this order.
SUMMARY_METRICS = ("loss", "acc", "val/loss", "val/acc")
EXTRAS = {"audio": "audio", "image": "image", "text": "text"}


@attrs.frozen
class CardFacts:
    """What the card is written from.

    Attributes:
        manifest: the export manifest.
        recipe: the resolved recipe as TOML data.
        folder: the exported folder (its summary, probe, ABX results and files are read).
        shapes: example shapes, ``{"input": (2, 1, 640), "latent": (2, 4, 128), "context": ...}``
            (a level may map scale names to shapes); empty when the encoder has no example input.
        repo_id: the Hub repository (``org/name``) for the loading snippets, if known.
        license: the Hub license identifier (``mit``, ``cc-by-4.0``, ...), if given.
    """

    manifest: Manifest
    recipe: Mapping[str, Any]
    folder: ExportDir
    shapes: Mapping[str, Any] = attrs.field(factory=dict)
    repo_id: str | None = None
    license: str | None = None


# ---- Markdown pieces ---------------------------------------------------------------------
def cell(text: Any) -> str:
    """One table cell: ``|`` escaped, newlines flattened."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]], numeric: Sequence[int] = ()) -> str:
    """A GitHub-flavoured Markdown table; the columns in ``numeric`` are right-aligned."""
    rule = ["---:" if i in numeric else "---" for i in range(len(header))]
    lines = [header, rule, *rows]
    return "\n".join("| " + " | ".join(cell(c) for c in line) + " |" for line in lines)


def code(value: Any) -> str:
    return f"`{value}`"


def settings(options: Mapping[str, Any]) -> str:
    """``key=value`` pairs of a recipe table in TOML notation (``name`` left out)."""
    pairs = [f"`{k} = {toml_io.toml_value(v)}`" for k, v in options.items() if k != "name" and v is not None]
    return ", ".join(pairs) if pairs else "defaults"


def number(value: Any, percent: bool = False) -> str:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"{100 * value:.1f}" if percent else f"{value:.4g}"


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def shape(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"`{k}`: {shape(v)}" for k, v in value.items())
    return "(" + ", ".join(str(v) for v in value) + ")"


def front_matter(facts: CardFacts, method: str) -> str:
    """The Hub's YAML metadata block."""
    tags = ["cpcframe", method.lower(), "self-supervised-learning", "representation-learning"]
    if facts.manifest.modality:
        tags.append(facts.manifest.modality)
    if facts.manifest.s3prl:
        tags += ["s3prl", "superb"]
    lines = ["---", "library_name: cpcframe"]
    if facts.license:
        lines.append(f"license: {facts.license}")
    lines += ["tags:", *[f"- {t}" for t in dict.fromkeys(tags)], "pipeline_tag: feature-extraction", "---"]
    return "\n".join(lines)


# ---- the card ----------------------------------------------------------------------------
def method_of(recipe: Mapping[str, Any]) -> str:
    critic = str(recipe.get("model", {}).get("critic", {}).get("name", ""))
    return "AMDIM" if critic.startswith("amdim") else "CPC"


def _section(recipe: Mapping[str, Any], path: str) -> Mapping[str, Any]:
    node: Any = recipe
    for part in path.split("."):
        node = node.get(part, {}) if isinstance(node, Mapping) else {}
    return node if isinstance(node, Mapping) else {}


def _origin(source: ComponentSource) -> str:
    if source.distribution and source.distribution != source.plugin:
        return f"{source.plugin} ({source.distribution} {source.version or ''})".replace(" )", ")")
    return source.plugin


def describe(facts: CardFacts, method: str) -> str:
    """The opening paragraph: what the model is."""
    by_path = {s.path: s for s in facts.manifest.components}
    encoder, context, critic = (by_path.get(f"model.{p}") for p in ("encoder", "context", "critic"))
    levels = facts.manifest.levels
    z = f" ({levels['latent']}-d)" if "latent" in levels else ""
    c = f" ({levels['context']}-d)" if "context" in levels else ""
    modality = facts.manifest.modality
    kind = f"{modality} " if modality in EXTRAS else ""
    plugin = f" (plugin {modality})" if modality and modality not in EXTRAS else ""
    text = (f"A self-supervised {kind}representation model{plugin} trained with {method} "
            f"([{'van den Oord et al. 2018' if method == 'CPC' else 'Bachman et al. 2019'}](#citation)) in "
            f"cpcframe {facts.manifest.cpcframe_version}.")
    if encoder is not None:
        text += f" The encoder {code(encoder.name)} maps an input to latent features z{z}"
        if context is not None and context.name != "identity":
            text += f"; the context model {code(context.name)} summarises them into context features c{c}"
        else:
            text += " (no context model: c = z)"
        text += "."
    if critic is not None:
        text += (f" Training optimised the InfoNCE loss of the critic {code(critic.name)}, which tells the "
                 f"true {'future latents' if method == 'CPC' else 'other views'} from negatives; the critic "
                 "is part of the weights but not needed for features.")
    return text


def model_table(facts: CardFacts) -> str:
    rows = []
    for source in facts.manifest.components:
        if source.path.startswith("model."):
            rows.append([f"{source.path.split('.', 1)[1]} (`[{source.path}]`)", code(source.name),
                         _origin(source), settings(_section(facts.recipe, source.path))])
    return markdown_table(["part", "component", "plugin", "settings"], rows)


def training_table(facts: CardFacts) -> str:
    recipe, summary = facts.recipe, facts.folder.read_summary()
    data, train, loss = _section(recipe, "data"), _section(recipe, "train"), _section(recipe, "loss")
    by_path = {s.path: s for s in facts.manifest.components}
    rows = []
    for path, label in (("data.dataset", "dataset"), ("data.views", "views")):
        if path in by_path:
            rows.append([label, f"{code(by_path[path].name)}, plugin {_origin(by_path[path])}: "
                                f"{settings(_section(recipe, path))}"])
    steps = train.get("steps")
    done = summary.get("step")
    if done is not None:
        rows.append(["steps", f"{done}" + (f" of {steps}" if steps is not None and steps != done else "")])
    elif steps is not None:
        rows.append(["steps", f"{steps} (planned; the run has no summary)"])
    if "batch_size" in data:
        rows.append(["batch size", f"{data['batch_size']} per process"
                     + (f", groups of {data['group_size']}" if data.get("group_size") else "")])
    rows.append(["optimiser", "AdamW, " + ", ".join(f"`{k} = {toml_io.toml_value(train[k])}`"
                                                     for k in TRAIN_KEYS if k in train)])
    if loss:
        rows.append(["loss", "InfoNCE, " + settings(loss)])
    if "seed" in recipe:
        rows.append(["seed", str(recipe["seed"])])
    if isinstance(summary.get("seconds"), numbers.Real):
        rows.append(["training time", duration(summary["seconds"])])
    metrics = summary.get("metrics") or {}
    shown = [f"{k} {number(metrics[k])}" for k in SUMMARY_METRICS if k in metrics]
    if shown:
        rows.append(["final metrics", ", ".join(shown)])
    if summary.get("skipped"):
        rows.append(["skipped items", ", ".join(f"{k}: {v}" for k, v in summary["skipped"].items())])
    return markdown_table(["setting", "value"], rows)


def probe_table(results: Mapping[str, Mapping[str, Any]]) -> str:
    """Tasks as rows, feature sets as columns, accuracies in percent (as ``cpcframe probe``)."""
    columns: list[str] = []
    for scores in results.values():
        columns += [name for name in scores if name not in columns]
    rows = [[task] + [number(scores[c], percent=True) if c in scores else "-" for c in columns]
            for task, scores in results.items()]
    return markdown_table(["task", *columns], rows, numeric=range(1, len(columns) + 1))


def _leaves(data: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    if isinstance(data, Mapping):
        return [leaf for k, v in data.items() for leaf in _leaves(v, (*path, str(k)))]
    return [(path, data)]


def abx_table(results: Any) -> str:
    """``abx.json`` as tables: numbers by their path (rows: all but the last key; columns:
    the last key), other values listed as settings under it."""
    leaves = _leaves(results)
    numeric = [(p, v) for p, v in leaves if isinstance(v, numbers.Real) and not isinstance(v, bool) and p]
    other = [(p, v) for p, v in leaves if (p, v) not in numeric and p]
    parts = []
    if numeric:
        deep = all(len(p) > 1 for p, _ in numeric)
        columns = list(dict.fromkeys(p[-1] for p, _ in numeric)) if deep else ["value"]
        rows: dict[str, dict[str, Any]] = {}
        for p, v in numeric:
            row, col = (" / ".join(p[:-1]), p[-1]) if deep else (" / ".join(p), "value")
            rows.setdefault(row, {})[col] = v
        parts.append(markdown_table(["", *columns], [[r] + [number(vals[c]) if c in vals else "-" for c in columns]
                                                    for r, vals in rows.items()],
                                    numeric=range(1, len(columns) + 1)))
    if other:
        parts.append("Settings: " + ", ".join(f"{' / '.join(p)} = {code(v)}" for p, v in other) + ".")
    return "\n\n".join(parts) if parts else f"(no results in {ABX})"


def usage(facts: CardFacts) -> str:
    """How to load it: Python (from the Hub or the folder), the command line, shapes."""
    modality = facts.manifest.modality
    extras = ",".join(e for e in (EXTRAS.get(modality), "hub") if e)
    source = facts.repo_id or "path/to/this/folder"
    lines = ["```sh", f'pip install "cpcframe[{extras}]"']
    lines += [f"pip install '{r}'" for r in facts.manifest.requirements()[1:]]  # third-party plugins
    lines += ["```", "", "```python", "import cpcframe", "",
              f'model = cpcframe.load("{source}")' + ("   # cached; revision=\"...\" pins a commit"
                                                     if facts.repo_id else "")]
    example = {"audio": "utterance.flac", "image": "picture.png", "text": "notes.txt"}.get(modality)
    if example:
        lines.append(f'features = model.embed("{example}")   # {{"{example.split(".")[0]}": array}}, '
                     "one array per file")
    shapes = facts.shapes
    if "input" in shapes:
        lines += ["", "# tensors batched as the encoder takes them:",
                  f"c = model.encode(x)                    # x: {shape(shapes['input'])} -> "
                  f"{_plain(shapes.get('context'))}",
                  f'z = model.encode(x, level="latent")    # -> {_plain(shapes.get("latent"))}']
    lines += ["```", "", "From the command line (a local folder):", "", "```sh",
              f"cpcframe embed {facts.repo_id and 'path/to/downloaded/folder' or source} "
              f"{example or 'INPUT'} --out features.npz", "```"]
    return "\n".join(lines)


def _plain(value: Any) -> str:
    if value is None:
        return "?"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k!r}: {_plain(v)}" for k, v in value.items()) + "}"
    return "(" + ", ".join(str(v) for v in value) + ")"


def s3prl_usage(facts: CardFacts) -> str:
    settings_ = facts.manifest.s3prl or {}
    repo = facts.repo_id or "ORG/NAME"
    names = settings_.get("hidden_states", [])
    widths = settings_.get("widths", {})
    rate = settings_.get("downsample_rate")
    described = ", ".join(f"{code(n)} ({widths.get(n, '?')}-d)" for n in names)
    return "\n".join([
        f"This repository is an [s3prl](https://github.com/s3prl/s3prl) upstream: `{facts.folder.expert.name}` "
        f"(class `UpstreamExpert`) loads the model with cpcframe (`pip install -r {facts.folder.requirements.name}`). "
        "For SUPERB tasks, from s3prl's `s3prl/` folder:", "",
        "```sh",
        f"python run_downstream.py -m train -n cpcframe_pr --hub huggingface -u {repo} "
        f"--upstream_model_name {facts.folder.weights.name} -d ctc -c downstream/ctc/libriphone.yaml",
        "```", "",
        markdown_table(["key", "what"], [
            ["`hidden_states`", f"{described}: the levels s3prl's weighted sum combines (one width)"],
            ["`latent`", f"z, the encoder's output ({widths.get('latent', '?')}-d): `-s latent`"],
            ["`context`", f"c, the context model's output ({widths.get('context', '?')}-d): `-s context`"],
            ["`last_hidden_state`", "c"],
        ]), "",
        f"Input: unpadded 16 kHz waveforms. Every key has {rate} samples per frame "
        f"(`get_downsample_rates`); utterance i has `len(wav_i) // {rate}` frames, computed as on that "
        "utterance alone (padding never changes them).",
    ])


def files_list(facts: CardFacts) -> str:
    folder = facts.folder
    known = {folder.recipe.name: "the resolved recipe (every setting of the run)",
             folder.weights.name: "the weights (safetensors)",
             folder.manifest.name: "what supplied each component (plugin, distribution, version)",
             folder.card.name: "this card",
             folder.expert.name: "the s3prl upstream",
             folder.requirements.name: "what `expert.py` needs",
             folder.summary.name: "final step, metrics, seconds, skipped items",
             folder.metrics.name: "one record per logged training step",
             folder.curves.name: "the training curves",
             folder.probe.name: "probe accuracies",
             folder.abx.name: "ABX error rates"}
    prefix, suffix = folder.probe_details("PROBE").name.split("PROBE")
    rows = [] if folder.card.exists() else [[code(folder.card.name), known[folder.card.name]]]
    for path in sorted(folder.root.iterdir()):
        name = path.name + ("/" if path.is_dir() else "")
        what = known.get(path.name, "a plugin's folder" if path.is_dir() else "")
        if not what and path.name.startswith(prefix) and path.name.endswith(suffix):
            what = "what a probe keeps beyond its accuracies"
        rows.append([code(name), what])
    return markdown_table(["file", "what"], rows)


def model_card(facts: CardFacts) -> str:
    """The whole ``README.md``."""
    method = method_of(facts.recipe)
    folder = facts.folder
    title = facts.manifest.run or folder.root.name
    parts = [front_matter(facts, method), "", f"# {title}", "", describe(facts, method), "",
             "## Model", "", model_table(facts), "",
             "## Training", "", training_table(facts), ""]
    probe = folder.read_probe_results()
    abx = folder.read_json(folder.abx)
    if probe or abx is not None:
        parts += ["## Evaluation", ""]
    if probe:
        probe_name = _section(facts.recipe, "probe").get("name")
        parts += [f"Probe {code(probe_name) if probe_name else ''}: accuracy (%) of classifiers trained on "
                  "the frozen features. `random_init` is the same architecture untrained; other columns "
                  "are the probe's baselines (e.g. `mfcc`).", "", probe_table(probe), ""]
    if abx is not None:
        parts += [f"ABX discriminability (error rates as in `{ABX}`):", "", abx_table(abx), ""]
    if folder.curves.is_file():
        parts += ["## Training curves", "", f"![training curves]({folder.curves.name})", ""]
    parts += ["## How to use", "", usage(facts), ""]
    if facts.manifest.s3prl:
        parts += ["### With s3prl (SUPERB)", "", s3prl_usage(facts), ""]
    parts += ["## Files", "", files_list(facts), ""]
    cite, bibtex = CITATIONS[method]
    parts += ["## Citation", "", f"The method: {cite}.", "", "```bibtex", bibtex, "```", ""]
    return "\n".join(parts)
