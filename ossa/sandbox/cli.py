"""`ossa sandbox`: build the image, inspect and prune containers, run code in a fresh session."""

from __future__ import annotations

from typing import Annotated

import docker
import typer

from ossa import jsontext
from ossa.errors import OssaError
from ossa.sandbox.container import OWNER_LABEL, owner_alive, remove_orphans, sandbox_containers
from ossa.sandbox.errors import SandboxError
from ossa.sandbox.image import DEFAULT_IMAGE, build, image_exists
from ossa.sandbox.session import Result, open_session

app = typer.Typer(no_args_is_help=True, help="Build and manage the python sandbox.")


@app.command("build")
def build_command(
    force: Annotated[bool, typer.Option("--force", help="Rebuild even if the tag exists.")] = False,
    base_image: Annotated[
        str | None,
        typer.Option(
            help="Build on a registry image (e.g. python:3.12-slim) with pip; needs network."
        ),
    ] = None,
    mirror: Annotated[str, typer.Option(help="Debian mirror for debootstrap.")] = (
        "http://deb.debian.org/debian"
    ),
    tag: Annotated[str, typer.Option(help="Image tag to build.")] = DEFAULT_IMAGE,
) -> None:
    """Build the sandbox image (offline from Debian packages by default); skips an existing tag."""
    try:
        build(tag, mirror=mirror, base_image=base_image, force=force, log=typer.echo)
    except (SandboxError, docker.errors.DockerException) as exc:
        raise OssaError(str(exc)) from exc


@app.command("status")
def status_command() -> None:
    """Say whether the daemon, the image and gVisor are there, and list sandbox containers."""
    try:
        client = docker.from_env(timeout=10)
        info = client.info()
    except docker.errors.DockerException as exc:
        raise OssaError(
            f"no Docker daemon answers ({exc}); start one (bash scripts/start-dockerd.sh)"
        ) from exc
    typer.echo(f"docker: {info.get('ServerVersion')} ({info.get('CgroupVersion', '?')} cgroups)")
    image = (
        "present" if image_exists(client, DEFAULT_IMAGE) else "missing: run `ossa sandbox build`"
    )
    typer.echo(f"image: {DEFAULT_IMAGE} {image}")
    runtimes = sorted(info.get("Runtimes", {}))
    gvisor = "registered" if "runsc" in runtimes else "not registered (scripts/install-runsc.sh)"
    typer.echo(f"runtimes: {', '.join(runtimes)}; gVisor runsc {gvisor}")
    containers = sandbox_containers(client)
    orphans = [c for c in containers if not owner_alive(c.labels.get(OWNER_LABEL, ""))]
    typer.echo(f"containers: {len(containers)} ({len(orphans)} orphaned)")
    for container in containers:
        typer.echo(f"  {container.name} {container.status} {container.labels.get(OWNER_LABEL)}")


@app.command("prune")
def prune_command(
    all_: Annotated[
        bool, typer.Option("--all", help="Also remove containers of running processes.")
    ] = False,
) -> None:
    """Remove sandbox containers left by processes that are gone (all of them with --all)."""
    try:
        removed = remove_orphans(docker.from_env(timeout=30), everything=all_)
    except docker.errors.DockerException as exc:
        raise OssaError(str(exc)) from exc
    typer.echo(f"removed {removed} container(s)")


@app.command("exec")
def exec_command(
    code: Annotated[list[str], typer.Argument(help="Snippets, run in order in one session.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the results as a JSON list.")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds per snippet.")] = 120.0,
    runtime: Annotated[str | None, typer.Option(help="Container runtime, e.g. runsc.")] = None,
) -> None:
    """Run CODE snippets in a fresh sandbox session and print each result (exit 1 if one failed)."""
    try:
        with open_session(timeout=timeout, runtime=runtime) as session:
            results = [session.run(snippet) for snippet in code]
    except SandboxError as exc:
        raise OssaError(str(exc)) from exc
    if as_json:
        typer.echo(jsontext.dumps([r.to_dict() for r in results], indent=2))
    else:
        for index, result in enumerate(results, 1):
            _show(index, result)
    if any(r.error for r in results):
        raise typer.Exit(1)  # the snippets' own failure, after every result is shown


def _show(index: int, result: Result) -> None:
    flags = [
        name
        for name in ("timed_out", "interrupted", "oom_killed", "restarted", "truncated")
        if getattr(result, name)
    ]
    typer.echo(f"[{index}] {result.duration_s:.3f} s {' '.join(flags)}".rstrip())
    for text in (result.stdout, result.result):
        if text:
            typer.echo(text.rstrip("\n"))
    for text in (result.stderr, result.error):
        if text:
            typer.echo(text.rstrip("\n"), err=True)
