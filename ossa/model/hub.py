"""Find a checkpoint: a local directory, or a Hugging Face repo fetched with huggingface_hub.

huggingface_hub shows progress, resumes partial downloads and honours `HF_HOME` and
`HF_HUB_OFFLINE`; only one layout is fetched (`original/` when the repo has it).
"""

from __future__ import annotations

from pathlib import Path

from ossa.model.checkpoint import CheckpointError

TRANSFORMERS_FILES = ["config.json", "*.safetensors", "model.safetensors.index.json"]


def resolve(source: str | Path, *, download: bool = True) -> Path:
    """A local directory holding the checkpoint for `source`."""
    path = Path(source).expanduser()
    if path.exists():
        return path
    text = str(source)
    if text.count("/") != 1 or text.startswith((".", "/", "~")):
        raise CheckpointError(f"{text} is neither a local directory nor a Hugging Face repo id")
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
        hint = (
            "run `ossa model pull` first"
            if not download
            else "and could not be downloaded: no network, or HF_HUB_OFFLINE is set"
        )
        raise CheckpointError(f"{text} is not in the local Hugging Face cache ({hint})") from None
    except (HfHubHTTPError, OSError) as e:
        raise CheckpointError(f"cannot download {text}: {e}") from None
    return folder
