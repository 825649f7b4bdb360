"""The image tag names its recipe, and building an existing tag does nothing."""

from __future__ import annotations

import pytest

from ossa.sandbox import DEFAULT_IMAGE
from ossa.sandbox.image import PACKAGES, VERSION, build


def test_tag_carries_the_recipe_version() -> None:
    assert DEFAULT_IMAGE.endswith(VERSION)
    assert {"python3", "python3-numpy", "python3-matplotlib"} <= set(PACKAGES)


@pytest.mark.docker
def test_build_skips_an_existing_tag() -> None:
    messages: list[str] = []
    assert build(DEFAULT_IMAGE, log=messages.append) is False
    assert messages == [f"{DEFAULT_IMAGE} already exists"]
