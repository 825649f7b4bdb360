"""A PDF's text layer, extracted in a child process that the processing budget can stop.

pypdf is pure Python over an adversary's file: one page whose content stream inflates to its
75 MB stream limit takes it minutes, and no check between pages interrupts that. The child
reads the PDF on stdin and writes one JSON line per result (the title, then each page) as
it goes; the parent waits until the budget, kills the child if it is still running, and
keeps the pages it got. The child's memory is capped too.

    python3 -I ossa/tools/browser/pdftext.py < file.pdf
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the child runs this file alone: it imports nothing from ossa
    from ossa.tools.browser.limits import Deadline

#: Address space the extracting child may use.
CHILD_MEMORY_BYTES = 2 * 1024**3


@dataclass
class PdfText:
    title: str | None = None
    pages: list[str] = field(default_factory=list)
    #: True when the budget ended the extraction before the last page
    cut: bool = False
    #: why the PDF could not be read, if it could not
    error: str | None = None


def extract(raw: bytes, budget: Deadline) -> PdfText:
    """The title and page texts of ``raw``, as many pages as ``budget`` allows."""
    if budget.expired:
        return PdfText(cut=True)
    child = subprocess.Popen(
        [sys.executable, "-I", __file__],  # -I: not the caller's environment or path
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        preexec_fn=_limit_memory,  # noqa: PLW1509 (no threads start in between)
    )
    try:
        out, _ = child.communicate(raw, timeout=budget.remaining())
        cut = False
    except subprocess.TimeoutExpired:
        child.kill()
        out, _ = child.communicate()  # what it wrote before it was stopped
        cut = True
    except BaseException:
        child.kill()
        child.wait()
        raise
    result = PdfText(cut=cut)
    for line in out.decode("utf-8", errors="replace").splitlines():
        try:
            item = json.loads(line)
        except ValueError:  # the line the child was writing when it was stopped
            break
        if "title" in item:
            result.title = item["title"]
        elif "page" in item:
            result.pages.append(item["page"])
        elif "error" in item:
            result.error = item["error"]
    if not cut and child.returncode and result.error is None:
        result.error = "the PDF reader stopped (out of memory?)"
    return result


def _limit_memory() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY_BYTES, CHILD_MEMORY_BYTES))


def main() -> None:
    """The child: PDF on stdin, JSON lines on stdout, flushed one by one."""
    from pypdf import PdfReader

    def emit(item: dict[str, str | None]) -> None:
        sys.stdout.write(json.dumps(item) + "\n")
        sys.stdout.flush()

    try:
        reader = PdfReader(io.BytesIO(sys.stdin.buffer.read()))
        title = reader.metadata.title if reader.metadata else None
        emit({"title": str(title) if title else None})
        for page in reader.pages:
            emit({"page": (page.extract_text() or "").strip()})
    except Exception as e:  # a broken PDF: reported to the parent, one line
        emit({"error": f"{type(e).__name__}: {e}"})


if __name__ == "__main__":
    main()
