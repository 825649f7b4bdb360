"""Find a checkpoint: a local directory, or a Hugging Face repo fetched with huggingface_hub.

huggingface_hub shows progress, resumes partial downloads and honours `HF_HOME` and
`HF_HUB_OFFLINE`; only one layout is fetched (`original/` when the repo has it). Everything
ossa downloads lives in that cache, so `cached()` lists it and `remove()` frees it.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from ossa.model.checkpoint import CheckpointError

TRANSFORMERS_FILES = ["config.json", "*.safetensors", "model.safetensors.index.json"]
CONFIG_FILES = ["original/config.json", "config.json"]  # in the order resolve() prefers them
OFFLINE_HINT = "and could not be downloaded: no network, or HF_HUB_OFFLINE is set"


def resolve(source: str | Path, *, download: bool = True) -> Path:
    """A local directory holding the checkpoint for `source`."""
    path = Path(source).expanduser()
    if path.exists():
        return path
    text = _repo_id(source)
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        local = not download
        folder = Path(
            snapshot_download(text, allow_patterns=["original/*"], local_files_only=local)
        )
        if not (folder / "original" / "config.json").is_file():
            folder = Path(
                snapshot_download(text, allow_patterns=TRANSFORMERS_FILES, local_files_only=local)
            )
    except LocalEntryNotFoundError:
        hint = "run `ossa model pull` first" if not download else OFFLINE_HINT
        raise CheckpointError(f"{text} is not in the local Hugging Face cache ({hint})") from None
    except (HfHubHTTPError, OSError) as e:
        raise CheckpointError(f"cannot download {text}: {_first_line(e)}") from None
    return folder


def resolve_config(source: str | Path) -> Path:
    """A directory holding `source`'s config.json, for describing a checkpoint before (or
    without) downloading its weights: a local directory, the cached snapshot, or the config
    file alone (a few KB) fetched from the Hub."""
    path = Path(source).expanduser()
    if path.exists():
        return path
    text = _repo_id(source)
    try:
        return resolve(text, download=False)
    except CheckpointError:
        pass  # not cached: fetch the config only
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError

    offline = False
    for name in CONFIG_FILES:
        try:
            return Path(hf_hub_download(text, name)).parent
        except LocalEntryNotFoundError:
            offline = True
        except EntryNotFoundError:
            continue  # the repo has no such file: try the other layout
        except (HfHubHTTPError, OSError) as e:
            raise CheckpointError(f"cannot fetch {text}'s config: {_first_line(e)}") from None
    if offline:
        raise CheckpointError(
            f"{text} is not in the local Hugging Face cache and its config could not be fetched "
            f"(no network, or HF_HUB_OFFLINE is set); online, `ossa model pull {text}` gets it"
        )
    raise CheckpointError(f"{text} has no config.json: not a gpt-oss checkpoint")


@dataclass(frozen=True)
class Cached:
    """A gpt-oss checkpoint in the Hugging Face cache."""

    repo: str
    path: Path  # the repo's cache folder (all its revisions)
    snapshot: Path  # the newest revision's files
    size: int  # bytes on disk, all revisions
    layout: str  # "original" or "transformers"
    weights: bool  # whether that layout's safetensors are there (not only the config)


def cached() -> list[Cached]:
    """The gpt-oss checkpoints in the Hugging Face cache (`HF_HOME`), by repo id."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        info = scan_cache_dir()
    except CacheNotFound:
        return []
    found = []
    for repo in info.repos:
        if repo.repo_type != "model" or not repo.revisions:
            continue
        newest = max(repo.revisions, key=lambda r: r.last_modified)
        layout = _layout(Path(newest.snapshot_path))
        if layout is None:
            continue
        kind, folder = layout
        weights = any(folder.glob("*.safetensors"))
        found.append(
            Cached(repo.repo_id, Path(repo.repo_path), folder, repo.size_on_disk, kind, weights)
        )
    return sorted(found, key=lambda c: c.repo)


def remove(repo: str) -> Cached:
    """Delete a cached checkpoint (every revision); unknown ids are refused."""
    entry = next((c for c in cached() if c.repo == repo), None)
    if entry is None:
        raise CheckpointError(
            f"{repo} is not a cached gpt-oss checkpoint (`ossa model list` shows those that are)"
        )
    shutil.rmtree(entry.path)
    return entry


def _layout(snapshot: Path) -> tuple[str, Path] | None:
    """A snapshot's gpt-oss layout and folder, judged by its config.json (None if not gpt-oss)."""
    for folder in (snapshot / "original", snapshot):
        try:
            data = json.loads((folder / "config.json").read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("model_type") == "gpt_oss":
            return "transformers", folder
        if isinstance(data, dict) and {"num_experts", "experts_per_token"} <= set(data):
            return "original", folder
    return None


def _repo_id(source: str | Path) -> str:
    text = str(source)
    if text.count("/") != 1 or text.startswith((".", "/", "~")):
        raise CheckpointError(f"{text} is neither a local directory nor a Hugging Face repo id")
    return text


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
