"""Build the sandbox image: offline from Debian packages, or on top of a registry base image.

The default image is a minimal Debian root made by debootstrap with python3 and the scientific
packages, then `docker import`ed. Its tag carries a hash of the recipe, so changing the recipe
names a new image and an existing tag is never rebuilt.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import docker

from ossa.sandbox.errors import SandboxError

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = (
    "python3",
    "python3-numpy",
    "python3-scipy",
    "python3-sympy",
    "python3-pandas",
    "python3-matplotlib",
)
PIP_PACKAGES = ("numpy", "scipy", "sympy", "pandas", "matplotlib")
# Removed from the root before import: documentation, translations and package caches, and
# the C toolchain's headers and internals (scipy pulls in pythran, which pulls in g++).
SLIM = (
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "usr/include",
    "usr/lib/gcc",
    "var/cache/apt",
    "var/lib/apt/lists",
)
CHANGES = ("ENV LANG=C.UTF-8", "USER 65534:65534", "WORKDIR /mnt/data", 'CMD ["python3"]')

VERSION = hashlib.sha256(repr((SUITE, PACKAGES, SLIM, CHANGES)).encode()).hexdigest()[:12]
DEFAULT_IMAGE = f"ossa-sandbox:{SUITE}-{VERSION}"


def image_exists(client: docker.DockerClient, tag: str) -> bool:
    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


def build(
    tag: str = DEFAULT_IMAGE,
    *,
    mirror: str = MIRROR,
    base_image: str | None = None,
    force: bool = False,
    log: Callable[[str], None] = print,
) -> bool:
    """Build `tag` unless it exists (or `force`); return whether anything was built.

    With `base_image` (for example "python:3.12-slim") the image is built on top of it with
    pip, which needs a registry and network; otherwise it is made offline with debootstrap.
    """
    client = docker.from_env()
    if image_exists(client, tag) and not force:
        log(f"{tag} already exists")
        return False
    if base_image:
        _build_from_base(client, tag, base_image, log)
    else:
        _build_with_debootstrap(client, tag, mirror, log)
    log(f"built {tag}")
    return True


def _build_with_debootstrap(
    client: docker.DockerClient, tag: str, mirror: str, log: Callable[[str], None]
) -> None:
    if shutil.which("debootstrap") is None:
        raise SandboxError("debootstrap is not installed: apt-get install debootstrap")
    if os.geteuid() != 0:
        raise SandboxError("debootstrap needs root: run `sudo ossa sandbox build`")
    with tempfile.TemporaryDirectory(prefix="ossa-image-") as work:
        root = Path(work) / "root"
        log(f"debootstrap {SUITE} with {', '.join(PACKAGES)} from {mirror} (a few minutes)")
        command = ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}"]
        _run([*command, SUITE, str(root), mirror])
        for path in SLIM:
            shutil.rmtree(root / path, ignore_errors=True)
        archive = Path(work) / "root.tar"
        _run(["tar", "-C", str(root), "--numeric-owner", "-cf", str(archive), "."])
        log(f"docker import as {tag}")
        repository, _, version = tag.rpartition(":")
        client.api.import_image_from_file(
            str(archive), repository=repository, tag=version, changes=list(CHANGES)
        )


def _build_from_base(
    client: docker.DockerClient, tag: str, base_image: str, log: Callable[[str], None]
) -> None:
    dockerfile = "\n".join(
        [
            f"FROM {base_image}",
            f"RUN pip install --no-cache-dir {' '.join(PIP_PACKAGES)}",
            *CHANGES,
        ]
    )
    log(f"docker build {tag} from {base_image} (pulls and needs network)")
    try:
        client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, pull=True, rm=True)
    except docker.errors.BuildError as exc:
        raise SandboxError(f"building from {base_image} failed: {exc}") from exc


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-2000:]
        raise SandboxError(f"{command[0]} failed ({done.returncode}):\n{tail}")
