"""`composer push`: upload a build's output folder to the Hugging Face Hub as a dataset.

The folder goes up as it is: its README.md is the dataset card (composer.card), whose
`configs` tell the Hub and `datasets.load_dataset` which files are which config and split.
The token is handed to huggingface_hub and never printed: an error from the Hub becomes
one line that names the repository, never the token.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from composer.errors import UserError
from composer.output import MARKER, is_composer_output

CARD = "README.md"


def check_output(out_dir: Path) -> dict:
    """The report of a composer output folder that has its dataset card; else UserError."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise UserError(f"{out_dir}: no such folder")
    if not is_composer_output(out_dir):
        raise UserError(
            f"{out_dir}: not a composer output folder (no valid {MARKER}); "
            "push the folder `composer build` wrote"
        )
    card = out_dir / CARD
    if not card.is_file():
        raise UserError(
            f"{card}: missing: the folder has no dataset card; rebuild it with this "
            "version of composer (`composer build`), which writes one"
        )
    text = card.read_text(encoding="utf-8")
    header = None
    if text.startswith("---\n"):
        end = text.find("\n---", 4)
        if end != -1:
            try:
                header = yaml.safe_load(text[4:end])
            except yaml.YAMLError:
                header = None
    if not isinstance(header, dict):
        raise UserError(f"{card}: not a dataset card: it has no YAML header between '---' lines")
    return json.loads((out_dir / MARKER).read_text(encoding="utf-8"))


def _hub_errors() -> tuple[type[BaseException], ...]:
    """What huggingface_hub raises for a problem the user can fix: HTTP errors (auth,
    permissions, missing repo), no token, an invalid repo id, offline mode and network
    failures. Its HTTP error derives from the HTTP library's base error (httpx or
    requests, by version), which is also what a failed connection raises."""
    from huggingface_hub.errors import HfHubHTTPError

    http_bases = tuple(
        c for c in HfHubHTTPError.__mro__ if c.__module__ != "builtins" and issubclass(c, Exception)
    )
    return (*http_bases, OSError, ValueError)


def _one_line(exc: BaseException, token: str | None) -> str:
    """The error's first line, with any hint by status, and the token (if any) masked."""
    from huggingface_hub.errors import HfHubHTTPError

    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if not isinstance(exc, HfHubHTTPError | OSError | ValueError):  # a failed connection
        message = f"cannot reach the Hub: {message}"
    if status == 401 or type(exc).__name__ == "LocalTokenNotFoundError":
        message += " (log in with `hf auth login`, set HF_TOKEN, or pass --token)"
    elif status == 403:
        message += " (the token cannot write there: use a token with write access)"
    if token:
        message = message.replace(token, "***")
    return message


def push(
    out_dir: Path,
    repo_id: str,
    private: bool = False,
    token: str | None = None,
    revision: str | None = None,
) -> str:
    """Create the dataset repo if needed and upload `out_dir` to it in one commit; the URL.

    `revision` is a branch, created from main when it does not exist. Without `token`,
    huggingface_hub uses HF_TOKEN or the stored login.
    """
    from huggingface_hub import HfApi

    out_dir = Path(out_dir)
    report = check_output(out_dir)
    api = HfApi(token=token)
    try:
        url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        repo_id = getattr(url, "repo_id", None) or repo_id  # "name" alone: in the user's space
        if revision:
            api.create_branch(repo_id, branch=revision, repo_type="dataset", exist_ok=True)
        api.upload_folder(
            folder_path=out_dir,
            repo_id=repo_id,
            repo_type="dataset",
            revision=revision,
            commit_message=f"composer: {report['name']} (seed {report.get('seed')})",
        )
    except _hub_errors() as exc:
        raise UserError(f"push to {repo_id}: {_one_line(exc, token)}") from None
    base = str(url).rstrip("/")
    return f"{base}/tree/{revision}" if revision else base
