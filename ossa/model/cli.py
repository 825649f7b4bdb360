"""`ossa model` sub-commands: fetch a checkpoint, describe one."""

from __future__ import annotations

import os

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(no_args_is_help=True)
console = Console()
GiB = 1 << 30


@app.command()
def pull(
    repo: str = typer.Argument(..., help="Hugging Face repo id, e.g. openai/gpt-oss-20b"),
) -> None:
    """Download a checkpoint (one layout, resumable; honours HF_HOME and HF_HUB_OFFLINE)."""
    from ossa.model import checkpoint, hub

    try:
        path = hub.resolve(repo)
    except checkpoint.CheckpointError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    console.print(f"{repo} is at {path}")


@app.command()
def info(
    source: str = typer.Argument(..., help="local checkpoint directory or a downloaded repo id"),
    context: int = typer.Option(8192, help="context length for the memory estimate"),
) -> None:
    """Show a checkpoint's config, parameter counts, bytes by dtype and the memory it needs."""
    import torch  # here, not at import time: `ossa --help` should not wait for torch

    from ossa.model import checkpoint, hub
    from ossa.model.loader import DEFAULT_EXPERT_CACHE

    try:
        ckpt = checkpoint.load(hub.resolve(source, download=False))
    except checkpoint.CheckpointError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    cfg = ckpt.config
    table = Table(title=f"{source} ({ckpt.layout} layout, {ckpt.path})", show_header=False)
    for key, value in cfg.to_original().items():
        table.add_row(key, str(value))
    counts = cfg.parameter_counts()
    table.add_row("parameters", f"{sum(counts.values()):,} ({counts['mxfp4']:,} MXFP4 experts)")
    for dtype, n in ckpt.nbytes().items():
        table.add_row(f"bytes {dtype}", f"{n:,} ({n / GiB:.2f} GiB)")
    weights = sum(ckpt.nbytes().values())
    kv = kv_bytes(
        cfg.num_hidden_layers, cfg.num_key_value_heads, cfg.head_dim, context, cfg.sliding_window
    )
    cache = min(DEFAULT_EXPERT_CACHE, 2 * counts["mxfp4"])  # bf16 copies of routed experts
    need = weights + kv + cache
    device = "cuda" if torch.cuda.is_available() else "cpu"
    have = (
        torch.cuda.mem_get_info()[1]
        if device == "cuda"
        else os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    )
    table.add_row(
        f"memory on {device}",
        f"{need / GiB:.2f} GiB = weights {weights / GiB:.2f} + KV cache at {context} tokens "
        f"{kv / GiB:.2f} + expert cache {cache / GiB:.2f} (device has {have / GiB:.1f} GiB)",
    )
    console.print(table)


def kv_bytes(layers: int, kv_heads: int, head_dim: int, context: int, window: int) -> int:
    """fp32 keys (+1 sink dim) and values: full layers hold the context, sliding ones a ring."""
    per_slot = kv_heads * (2 * head_dim + 1) * 4
    full, sliding = layers // 2, layers - layers // 2
    return per_slot * (full * context + sliding * (window + 512))
