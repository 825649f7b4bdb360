"""`ossa model` sub-commands: fetch a checkpoint, describe one, list and remove cached ones.

Failures raise `OssaError` (a `CheckpointError` for a bad or missing checkpoint), which the
`ossa` entry point prints as one line.
"""

from __future__ import annotations

import json
import os

import typer
from rich.console import Console
from rich.table import Table

from ossa.errors import UsageError

# plain click help, as the root command has it: flags show as flags, defaults are shown
app = typer.Typer(no_args_is_help=True, rich_markup_mode=None)
console = Console()
GiB = 1 << 30
JSON_HELP = "print JSON instead of a table"
KV_ITEMSIZE = {"bf16": 2, "fp32": 4}  # bytes per KV cache element, by `--kv-dtype`


@app.command()
def pull(
    repo: str = typer.Argument(..., help="Hugging Face repo id, e.g. openai/gpt-oss-20b"),
) -> None:
    """Download a checkpoint (one layout, resumable; honours HF_HOME and HF_HUB_OFFLINE)."""
    from ossa.model import hub

    console.print(f"{repo} is at {hub.resolve(repo)}")


@app.command()
def info(
    source: str = typer.Argument(..., help="local checkpoint directory or a Hugging Face repo id"),
    context: int = typer.Option(8192, help="context length for the memory estimate"),
    device: str = typer.Option("auto", help="device for the memory estimate: auto, cpu or cuda"),
    kv_dtype: str = typer.Option(
        "bf16",
        "--kv-dtype",
        help="KV cache for the memory estimate: bf16 (the agent's default, half the memory) "
        "or fp32 (exact against an fp32 reference)",
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Show a checkpoint's config, parameters, bytes and the memory it needs to run.

    Only config.json is needed (fetched alone when the weights are not downloaded yet), so
    this answers before a multi-GB download; weights that are there are checked.
    """
    facts = describe(source, context=context, device=device, kv_dtype=kv_dtype)
    if as_json:
        typer.echo(json.dumps(facts, indent=2))
        return
    table = Table(title=f"{source} ({facts['layout']} layout, {facts['path']})", show_header=False)
    for key, value in facts["config"].items():
        table.add_row(key, str(value))
    table.add_row(
        "parameters", f"{facts['parameters']:,} ({facts['mxfp4_parameters']:,} MXFP4 experts)"
    )
    for dtype, n in facts["bytes"].items():
        table.add_row(f"bytes {dtype}", f"{n:,} ({n / GiB:.2f} GiB)")
    table.add_row("weights", "present, checked" if facts["downloaded"] else "not downloaded")
    mem = facts["memory"]
    table.add_row(
        f"memory on {mem['device']}",
        f"{mem['total'] / GiB:.2f} GiB = weights {mem['weights'] / GiB:.2f} + KV cache at "
        f"{context} tokens in {mem['kv_dtype']} {mem['kv_cache'] / GiB:.2f} + expert cache "
        f"{mem['expert_cache'] / GiB:.2f} (device has {mem['device_total'] / GiB:.1f} GiB)",
    )
    console.print(table)


def describe(source: str, *, context: int, device: str, kv_dtype: str) -> dict:
    """What `info` shows, as JSON-ready data."""
    if context < 1:
        raise UsageError("--context must be at least 1")
    if kv_dtype not in KV_ITEMSIZE:
        raise UsageError(f"--kv-dtype must be {' or '.join(KV_ITEMSIZE)}, not {kv_dtype!r}")
    import torch  # here, not at import time: `ossa --help` should not wait for torch

    from ossa.model import checkpoint, hub, kernel, memory
    from ossa.model.loader import DEFAULT_EXPERT_CACHE, resolve_device

    target = resolve_device(device)
    layout, folder = checkpoint.find(hub.resolve_config(source), weights=False)
    downloaded = any(folder.glob("*.safetensors"))
    _, cfg = checkpoint.read_config(folder)
    if downloaded:
        checkpoint.load(folder)  # maps and checks every file against the config, reads no weights
    on_cpu = target == "cpu"
    budget = 0 if on_cpu and kernel.available() else DEFAULT_EXPERT_CACHE  # see engine.Model
    need = memory.estimate(
        cfg, context=context, kv_itemsize=KV_ITEMSIZE[kv_dtype], expert_cache_budget=budget
    )
    have = (
        os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        if on_cpu
        else torch.cuda.mem_get_info(torch.device(target))[1]
    )
    counts = cfg.parameter_counts()
    return {
        "source": source,
        "layout": layout,
        "path": str(folder),
        "downloaded": downloaded,
        "config": cfg.to_original(),
        "parameters": sum(counts.values()),
        "mxfp4_parameters": counts["mxfp4"],
        "bytes": cfg.stored_bytes(),
        "memory": {
            "device": target,
            "context": context,
            "kv_dtype": kv_dtype,
            "weights": need.weights,
            "kv_cache": need.kv_cache,
            "expert_cache": need.expert_cache,
            "total": need.total,
            "device_total": have,
        },
    }


@app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """List the gpt-oss checkpoints in the Hugging Face cache (HF_HOME)."""
    from ossa.model import hub

    entries = hub.cached()
    if as_json:
        rows = [
            {
                "id": c.repo,
                "layout": c.layout,
                "weights": c.weights,
                "size": c.size,
                "path": str(c.path),
            }
            for c in entries
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    if not entries:
        console.print("no gpt-oss checkpoints are cached (`ossa model pull REPO` fetches one)")
        return
    rows = [("ID", "LAYOUT", "SIZE", "PATH")]
    for c in entries:
        layout = c.layout if c.weights else f"{c.layout} (config only)"
        rows.append((c.repo, layout, f"{c.size / GiB:.2f} GiB", str(c.path)))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:  # plain columns: paths stay whole, and the output greps well
        typer.echo("  ".join([*(v.ljust(w) for v, w in zip(row, widths, strict=False)), row[3]]))


@app.command()
def rm(
    repo: str = typer.Argument(..., help="a cached checkpoint's id, as `ossa model list` shows"),
    yes: bool = typer.Option(False, "--yes", "-y", help="delete without asking"),
) -> None:
    """Delete a cached checkpoint (all its revisions) from the Hugging Face cache."""
    from ossa.model import hub

    entry = next((c for c in hub.cached() if c.repo == repo), None)
    if entry is not None and not yes:
        typer.confirm(f"delete {repo} ({entry.size / GiB:.2f} GiB at {entry.path})?", abort=True)
    removed = hub.remove(repo)
    console.print(f"deleted {removed.repo} ({removed.size / GiB:.2f} GiB)")
