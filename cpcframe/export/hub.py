"""Where a model is: a local folder, or a Hugging Face Hub repository made local.

:func:`cpcframe.load` takes a run directory, an exported folder, or a Hub id
(``"org/name"``, with ``revision=`` a branch, tag or commit). A Hub model is fetched with
``huggingface_hub`` (the optional extra ``cpcframe[hub]``), which keeps it in its cache
(``HF_HOME`` / ``HF_HUB_CACHE``) and, under ``HF_HUB_OFFLINE=1``, reads only that cache.
The recipe is fetched first: a repository without one is not a cpcframe model, and is
refused before anything else of it is downloaded.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType
from typing import Any

from cpcframe._version import __version__
from cpcframe.errors import UserError
from cpcframe.runs.layout import RECIPE, WEIGHTS, RunDir

#: ``org/name``: one slash, the Hub's characters (a local path with more parts, or one
#: that exists, is never taken for a Hub id).
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9_.-]+$")
INSTALL_HUB = "pip install 'cpcframe[hub]'"


def looks_like_hub_id(text: str) -> bool:
    return bool(HUB_ID.match(text)) and ".." not in text and not text.endswith((".", "-"))


def import_hub(purpose: str) -> ModuleType:
    """``huggingface_hub``, or a :class:`UserError` saying how to install it."""
    try:
        import huggingface_hub
        import huggingface_hub.constants  # noqa: F401 - a submodule the package does not import eagerly
    except ImportError:
        raise UserError(f"{purpose} needs huggingface_hub: {INSTALL_HUB}") from None
    return huggingface_hub


def hub_errors(hub: ModuleType) -> Any:
    """The module holding the Hub's error classes (``errors`` since 0.23, ``utils`` before)."""
    try:
        from huggingface_hub import errors
    except ImportError:  # pragma: no cover - huggingface_hub < 0.23
        errors = hub.utils
    return errors


def offline(hub: ModuleType) -> bool:
    return bool(getattr(hub.constants, "HF_HUB_OFFLINE", False))


def locate_model(source: str | Path, revision: str | None = None) -> Path:
    """The local folder of ``source``: itself when it is a path, the cached snapshot of the
    Hub repository when it is an ``org/name`` id that is not an existing path.

    Raises:
        UserError: ``revision`` for a local folder; the Hub cannot give the model (see
            :func:`download_model`).
    """
    text = str(source)
    if isinstance(source, Path) or Path(text).exists() or not looks_like_hub_id(text):
        if revision is not None:
            raise UserError(f"revision={revision!r} is for models on the Hugging Face Hub; "
                            f"{text} is a local path")
        return Path(source)
    return download_model(text, revision)


def download_model(repo_id: str, revision: str | None = None) -> Path:
    """Fetch (or find in the cache) the model repository ``repo_id`` at ``revision``.

    Raises:
        UserError: ``huggingface_hub`` is not installed; no such repository or revision
            (or it is private or gated and no token gives access); it is not a cpcframe model
            (no recipe or weights); offline (``HF_HUB_OFFLINE``) or unreachable, and not cached.
    """
    hub = import_hub(f"loading {repo_id!r} from the Hugging Face Hub")
    errors = hub_errors(hub)
    where = f"{repo_id!r}" + (f" at revision {revision!r}" if revision else "")
    options: dict[str, Any] = {"library_name": "cpcframe", "library_version": __version__}
    try:
        recipe = Path(hub.hf_hub_download(repo_id, RECIPE, revision=revision, **options))
        # The snapshot folder is named by the commit: fetch the rest at that very commit.
        folder = Path(hub.snapshot_download(repo_id, revision=recipe.parent.name, **options))
    except errors.LocalEntryNotFoundError:
        if _cached_snapshot(hub, repo_id, revision) is not None:
            raise UserError(_not_cpcframe(where, RECIPE)) from None
        reason = ("HF_HUB_OFFLINE is set" if offline(hub)
                  else "the Hugging Face Hub cannot be reached")
        raise UserError(f"no local folder {repo_id!r}, and the Hub model {where} is not in the Hugging Face "
                        f"cache ({hub.constants.HF_HUB_CACHE}) while {reason}") from None
    except errors.GatedRepoError:
        raise UserError(f"the Hub model {where} is gated: accept its terms on huggingface.co and log in "
                        "(hf auth login, or set HF_TOKEN)") from None
    except errors.RepositoryNotFoundError:
        raise UserError(f"no local folder {repo_id!r}, and no model {repo_id!r} on the Hugging Face Hub "
                        "(a private one needs a login: hf auth login, or set HF_TOKEN)") from None
    except errors.RevisionNotFoundError:
        raise UserError(f"the Hub model {repo_id!r} has no revision {revision!r}") from None
    except errors.EntryNotFoundError:
        raise UserError(_not_cpcframe(where, RECIPE)) from None
    except (errors.HfHubHTTPError, OSError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UserError(f"cannot fetch the Hub model {where}: {first}") from None
    if not RunDir(folder).weights.is_file():
        raise UserError(_not_cpcframe(where, WEIGHTS))
    return folder


def _not_cpcframe(where: str, missing: str) -> str:
    return (f"the Hub model {where} is not a cpcframe model (it has no {missing}; "
            "cpcframe push RUN_DIR ORG/NAME uploads one)")


def _cached_snapshot(hub: ModuleType, repo_id: str, revision: str | None) -> Path | None:
    """The cached snapshot folder of ``repo_id`` (``None`` when it is not cached)."""
    try:
        return Path(hub.snapshot_download(repo_id, revision=revision, local_files_only=True))
    except Exception:  # noqa: BLE001 - any failure means "not cached"
        return None
