"""Pushing an export's `hub/` folder to the Hugging Face Hub (token from the environment or login only)."""

from __future__ import annotations

from pathlib import Path

from curator.errors import CuratorError
from curator.redact import redact


def push(folder: Path, repo_id: str, private: bool, api=None) -> str:
    """Upload `folder` to the dataset repo `repo_id`; `api` (an `HfApi`-like object) is injectable for tests."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError
    from huggingface_hub.utils import get_token

    token = get_token()  # HF_TOKEN, or the cached login; never a command-line flag
    api = api or HfApi(token=token)
    try:
        try:
            info = api.repo_info(repo_id, repo_type="dataset")
            if private and not info.private:
                raise CuratorError(
                    f"{repo_id} already exists and is public; --private would not make the pushed data private. "
                    "Change its visibility on the Hub first, or push to a new repository"
                )
        except RepositoryNotFoundError:
            api.create_repo(repo_id, repo_type="dataset", private=private)
        commit = api.upload_folder(repo_id=repo_id, repo_type="dataset", folder_path=str(folder),
                                   commit_message="curator export")
    except HfHubHTTPError as e:
        raise CuratorError(f"push to {repo_id} failed: {redact(str(e), secrets=(token or '',)).splitlines()[0][:200]}") from None
    return getattr(commit, "commit_url", None) or f"hub:{repo_id}"
