"""Helpers of the export tests: a Hugging Face Hub that never leaves this machine, and a
check of the model cards' Markdown.

:class:`LocalHub` stands in for ``huggingface_hub.HfApi``: an upload becomes a commit in
the library's own cache layout (``models--ORG--NAME/snapshots/<sha>/`` and
``refs/<branch>``), exactly what a download leaves there, so the real
``huggingface_hub`` reads it back in offline mode (``HF_HUB_OFFLINE=1``).
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any


def train_toy_run(run: Path, name: str = "toy_model") -> Path:
    """A 2-step run of the toy plugin's recipe at ``run``: what the export tests export."""
    from cpcframe.config.loader import load_recipe
    from cpcframe.plugins import default_registry
    from cpcframe.runs import RunDir
    from cpcframe.training.trainer import Trainer

    from testpaths import TESTS

    registry = default_registry()
    recipe = load_recipe(TESTS / "core" / "toy_recipe.toml", registry, ["train.steps=2", f"name={name}"])
    Trainer(recipe, registry, RunDir(run), progress=False).run()
    return run


def cache_folder(cache: Path, repo_id: str) -> Path:
    return Path(cache) / ("models--" + repo_id.replace("/", "--"))


def publish_to_cache(folder: Path, repo_id: str, cache: Path, branch: str = "main") -> str:
    """Copy ``folder`` as a commit of ``repo_id`` on ``branch`` into the Hub cache ``cache``,
    as a download leaves it: contents in ``blobs/``, the snapshot's files relative symbolic
    links to them. Returns the commit hash."""
    files = sorted(p for p in Path(folder).rglob("*") if p.is_file())
    digest = hashlib.sha1()
    for path in files:
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    digest.update(branch.encode())
    sha = digest.hexdigest()
    repo = cache_folder(cache, repo_id)
    snapshot = repo / "snapshots" / sha
    for path in files:
        content = path.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(content).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(content)
        link = snapshot / path.relative_to(folder)
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / branch).write_text(sha)
    return sha


class LocalHub:
    """The parts of ``huggingface_hub.HfApi`` that ``cpcframe push`` calls, writing into a
    local Hub cache; every call is recorded in ``calls``."""

    instances: list["LocalHub"] = []
    cache: Path | None = None

    def __init__(self, cache: Path | None = None, **kwargs: Any):
        self.cache = Path(cache) if cache is not None else type(self).cache
        self.calls: list[tuple[str, dict[str, Any]]] = [("__init__", kwargs)]
        self.uploaded: dict[str, list[str]] = {}
        type(self).instances.append(self)

    def create_repo(self, repo_id: str, **kwargs: Any) -> str:
        self.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))
        return f"https://huggingface.co/{repo_id}"

    def create_branch(self, repo_id: str, **kwargs: Any) -> None:
        self.calls.append(("create_branch", {"repo_id": repo_id, **kwargs}))

    def upload_folder(self, *, repo_id: str, folder_path: Path, revision: str | None = None,
                      **kwargs: Any) -> Any:
        self.calls.append(("upload_folder", {"repo_id": repo_id, "folder_path": folder_path,
                                             "revision": revision, **kwargs}))
        self.uploaded[repo_id] = sorted(str(p.relative_to(folder_path))
                                        for p in Path(folder_path).rglob("*") if p.is_file())
        sha = publish_to_cache(Path(folder_path), repo_id, self.cache, branch=revision or "main")
        return SimpleNamespace(oid=sha, commit_url=f"https://huggingface.co/{repo_id}/commit/{sha}")


# ---- Markdown ------------------------------------------------------------------------------
_RULE = re.compile(r"^\|(\s*:?-{3,}:?\s*\|)+$")


def _cells(line: str) -> list[str]:
    inner = line.strip()[1:-1]
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", inner)]


def markdown_tables(text: str) -> list[tuple[list[str], list[list[str]]]]:
    """Every GitHub-flavoured table of ``text`` as ``(header, rows)``; asserts each is well
    formed (a rule line under the header, every row as many cells as the header), and,
    where markdown-it is installed, that it renders as many HTML tables."""
    lines = text.splitlines()
    tables = []
    i = 0
    in_code = False
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("|") and i + 1 < len(lines) and _RULE.match(lines[i + 1].strip()):
            header = _cells(line)
            assert len(_cells(lines[i + 1])) == len(header), lines[i:i + 2]
            rows = []
            i += 2
            while i < len(lines) and lines[i].startswith("|"):
                row = _cells(lines[i])
                assert len(row) == len(header), (header, lines[i])
                rows.append(row)
                i += 1
            tables.append((header, rows))
            continue
        i += 1
    try:
        from markdown_it import MarkdownIt
    except ImportError:
        return tables
    html = MarkdownIt("commonmark").enable("table").render(text)
    assert html.count("<table>") == len(tables), "markdown-it renders another number of tables"
    return tables


def front_matter(text: str) -> str:
    """The YAML block at the top of a model card."""
    assert text.startswith("---\n"), text[:40]
    return text[4:text.index("\n---\n", 4)]


def table_with(tables: list, first_header: str) -> tuple[list[str], dict[str, list[str]]]:
    """The table whose first column is ``first_header``: ``(header, {first cell: row})``."""
    for header, rows in tables:
        if header[0] == first_header:
            return header, {row[0]: row for row in rows}
    raise AssertionError(f"no table headed {first_header!r} in {[h for h, _ in tables]}")
