"""``push_run``: export a run and upload it as a model repository on the Hugging Face Hub.

The export is written into a temporary folder and uploaded in one commit with
``huggingface_hub`` (``HfApi.create_repo`` + ``HfApi.upload_folder``), which takes the
token from ``hf auth login`` or ``HF_TOKEN``. Files of an earlier push that the new export
does not have are left in the repository.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import attrs

from cpcframe._version import __version__
from cpcframe.errors import UserError
from cpcframe.export.bundle import ExportResult, export_run, require_trained_run
from cpcframe.export.hub import hub_errors, import_hub, looks_like_hub_id, offline


@attrs.frozen
class PushResult:
    """What :func:`push_run` uploaded.

    Attributes:
        repo_id: the repository.
        url: its commit's address (or the repository's, when the Hub gave none).
        export: the export that was uploaded (its folder no longer exists).
    """

    repo_id: str
    url: str
    export: ExportResult


def push_run(run_dir: str | Path, repo_id: str, *, private: bool | None = None, revision: str | None = None,
             commit_message: str | None = None, license: str | None = None, api: Any = None) -> PushResult:
    """Export ``run_dir`` and upload it to the Hub repository ``repo_id`` (created if needed).

    Args:
        run_dir: a run directory (or an export).
        repo_id: ``org/name``.
        private: create the repository private (an existing one keeps its visibility).
        revision: the branch to commit to (created from the default branch if needed).
        commit_message: default ``"Upload cpcframe model <name>"``.
        license: the card's license identifier.
        api: a ``huggingface_hub.HfApi`` (default: a new one).

    Raises:
        UserError: a bad ``repo_id``, ``huggingface_hub`` missing, offline mode, no login or
            no write access, or anything :func:`export_run` refuses.
    """
    if not looks_like_hub_id(repo_id):
        raise UserError(f"{repo_id!r} is not a Hub repository id (expected org/name)")
    require_trained_run(run_dir)
    hub = import_hub(f"pushing to {repo_id!r}")
    if api is None and offline(hub):
        raise UserError(f"cannot push to {repo_id!r}: HF_HUB_OFFLINE is set")
    errors = hub_errors(hub)
    with tempfile.TemporaryDirectory(prefix="cpcframe-push-") as tmp:
        exported = export_run(run_dir, Path(tmp) / repo_id.split("/")[1], repo_id=repo_id, license=license)
        api = api if api is not None else hub.HfApi(library_name="cpcframe", library_version=__version__)
        message = commit_message or f"Upload cpcframe model {exported.manifest.run}"
        try:
            api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
            if revision is not None:
                api.create_branch(repo_id, branch=revision, exist_ok=True, repo_type="model")
            commit = api.upload_folder(repo_id=repo_id, folder_path=exported.folder, commit_message=message,
                                       revision=revision, repo_type="model")
        except errors.LocalTokenNotFoundError:
            raise UserError(f"cannot push to {repo_id!r}: not logged in to the Hugging Face Hub "
                            "(hf auth login, or set HF_TOKEN)") from None
        except errors.HfHubHTTPError as exc:
            status = getattr(getattr(exc, "response", None), "status_code", None)
            if status in (401, 403):
                raise UserError(f"cannot push to {repo_id!r}: the Hub refused the token ({status}); log in "
                                "with a token that may write there (hf auth login, or set HF_TOKEN)") from None
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise UserError(f"cannot push to {repo_id!r}: {first}") from None
        except OSError as exc:  # connection errors
            raise UserError(f"cannot push to {repo_id!r}: {exc}") from None
    url = getattr(commit, "commit_url", None) or f"https://huggingface.co/{repo_id}"
    return PushResult(repo_id, str(url), exported)
