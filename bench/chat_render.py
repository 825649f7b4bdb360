"""Chat render time for 1k, 2k and 4k-token answers: the old renderer against the new, one run.

The old one (kept below only as the baseline) re-parsed and redrew the whole answer's Markdown
at every delta, on the caller's thread. The new one (ossa.agent.render.TerminalView) queues
each event for a display thread that prints finished blocks once and redraws only the open one
at a bounded rate. Answers are Markdown with paragraphs, lists, code blocks, tables and
citations (web and local-corpus), cut into the gpt-oss tokenizer's tokens. Both render into a
rich Console that is an interactive terminal of fixed size writing to /dev/null, so the
figures are rich's work, not a terminal's.

Two tables:
- flood: tokens arrive as fast as the caller can hand them over; seconds until the whole
  answer is on the screen (``close()`` returned), per token, and how long each ``show()``
  blocked the caller (the generation side's cost).
- paced: tokens arrive at --rate tokens/s, as from a fast engine; how far behind the screen
  is when the last token arrives, and the CPU time the rendering took per token.

    python3 bench/chat_render.py [--repeat 3] [--sizes 1000,2000,4000] [--rate 300]
"""

from __future__ import annotations

import argparse
import codecs
import os
import statistics
import time
from collections.abc import Callable

from rich.console import Console
from rich.live import Live
from rich.markdown import Markdown

from ossa.agent.events import FinalDelta, TurnEnd
from ossa.agent.render import TerminalView
from ossa.harmony import load_harmony_encoding

WIDTH, HEIGHT = 100, 40


def section(i: int) -> str:
    """One part of a long answer; ``i`` varies the text so no two parts are equal."""
    return f"""\
## Part {i}: how the cache is reused

The engine keeps a ring of key/value blocks, so turn {i} reuses the prefix it shares with the
previous turn instead of computing it again ([example.com, L{i}-L{i + 4}](https://example.com/kv/{i})).
Only the new tokens are prefilled, which is why a long chat stays fast ([local, L{i}](file:///srv/corpus/notes-{i}.md)).

- The prompt is rendered once per step, and compared with the cached tokens.
- A mismatch at position *p* drops the blocks after *p* and keeps the rest.
- Sliding-window layers keep only the last **128** positions of each block.

1. Tokenize the conversation.
2. Find the longest shared prefix with the cache.
3. Prefill what is new, then decode.

```python
def shared_prefix(cached: list[int], prompt: list[int]) -> int:
    n = 0
    for a, b in zip(cached, prompt):
        if a != b:
            break
        n += 1
    return n  # part {i}
```

| turn | prompt tokens | reused | prefilled |
|-----:|--------------:|-------:|----------:|
| {i} | {1000 + 37 * i} | {900 + 31 * i} | {100 + 6 * i} |
| {i + 1} | {1100 + 37 * i} | {1000 + 31 * i} | {100 + 6 * i} |

> Reuse depends on the prompt being rendered the same way each time; a changed system
> message invalidates everything after it.

"""


def answer_deltas(tokens: int) -> list[str]:
    """The text of a ``tokens``-token answer, one string per token (as the agent streams it)."""
    encoding = load_harmony_encoding()
    text, i = "", 0
    while len(encoding.encode(text)) < tokens:
        text += section(i)
        i += 1
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    return [decoder.decode(encoding.decode_bytes([t])) for t in encoding.encode(text)[:tokens]]


def terminal() -> Console:
    return Console(
        file=open(os.devnull, "w"),  # noqa: SIM115 - closed by the caller
        width=WIDTH,
        height=HEIGHT,
        force_terminal=True,
        force_interactive=True,
        color_system="truecolor",
    )


class OldView:
    """The renderer before the display thread (the baseline): Markdown of the whole answer
    rebuilt at every delta, a rich Live redrawing it eight times a second."""

    def __init__(self, console: Console) -> None:
        self.console, self.answer, self.live = console, "", None

    def show(self, event) -> None:
        if not isinstance(event, FinalDelta):
            return
        self.answer += event.text
        if self.live is None:
            self.live = Live(Markdown(self.answer), console=self.console, refresh_per_second=8)
            self.live.start()
        else:
            self.live.update(Markdown(self.answer))

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()


def one_run(make_view: Callable[[Console], object], deltas: list[str], rate: float | None):
    """(seconds to the whole answer on screen, lag after the last token, CPU s, show() times)."""
    console = terminal()
    view = make_view(console)
    events = [FinalDelta(d) for d in deltas] + [TurnEnd("completed")]
    blocked = []
    cpu, start = time.process_time(), time.perf_counter()
    for n, event in enumerate(events):
        if rate is not None:
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        before = time.perf_counter()
        view.show(event)
        blocked.append(time.perf_counter() - before)
    last_token = time.perf_counter()
    view.close()
    end = time.perf_counter()
    console.file.close()
    return end - start, end - last_token, time.process_time() - cpu, blocked


def measure(make_view, deltas, repeat: int, rate: float | None) -> dict[str, float]:
    runs = [one_run(make_view, deltas, rate) for _ in range(repeat)]
    blocked = sorted(b for run in runs for b in run[3])
    return {
        "total": statistics.median(r[0] for r in runs),
        "lag": statistics.median(r[1] for r in runs),
        "cpu": statistics.median(r[2] for r in runs),
        "show_median": statistics.median(blocked),
        "show_p99": blocked[int(len(blocked) * 0.99)],
        "show_max": blocked[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per size (medians)")
    parser.add_argument("--sizes", default="1000,2000,4000", help="answer lengths in tokens")
    parser.add_argument("--rate", type=float, default=300.0, help="tokens/s in the paced runs")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    views = {"old": OldView, "new": lambda c: TerminalView(c, show_reasoning=False)}
    load_before = os.getloadavg()
    print(
        f"# {os.cpu_count()} CPUs, load average {load_before[0]:.2f} before; terminal "
        f"{WIDTH}x{HEIGHT} to /dev/null; median of {args.repeat} run(s)"
    )

    us = 1e6
    print("\nflood: tokens as fast as the caller hands them over")
    print(
        f"{'tokens':>6} {'old s':>8} {'old ms/tok':>10} {'new s':>7} {'new ms/tok':>10} "
        f"{'speedup':>8} {'new cpu ms/tok':>14} | show() blocks, µs: {'old med':>8} "
        f"{'new med':>8} {'new p99':>8} {'new max':>8}"
    )
    flood = {}
    for size in sizes:
        deltas = answer_deltas(size)
        old, new = (measure(views[k], deltas, args.repeat, None) for k in ("old", "new"))
        flood[size] = new
        print(
            f"{size:>6} {old['total']:>8.2f} {old['total'] / size * 1e3:>10.2f} "
            f"{new['total']:>7.3f} {new['total'] / size * 1e3:>10.3f} "
            f"{old['total'] / new['total']:>7.0f}x {new['cpu'] / size * 1e3:>14.3f} | "
            f"{'':>17}{old['show_median'] * us:>8.0f} "
            f"{new['show_median'] * us:>8.1f} {new['show_p99'] * us:>8.1f} "
            f"{new['show_max'] * us:>8.0f}"
        )

    print(f"\npaced: {args.rate:.0f} tokens/s, as from a fast engine")
    print(
        f"{'tokens':>6} {'ideal s':>8} {'old s':>7} {'old lag s':>9} {'new s':>7} "
        f"{'new lag s':>9} {'old cpu ms/tok':>14} {'new cpu ms/tok':>14} | new show() µs: "
        f"{'p99':>6} {'max':>6}"
    )
    paced = {}
    for size in sizes:
        deltas = answer_deltas(size)
        old, new = (measure(views[k], deltas, 1, args.rate) for k in ("old", "new"))
        paced[size] = new
        print(
            f"{size:>6} {size / args.rate:>8.2f} {old['total']:>7.2f} {old['lag']:>9.2f} "
            f"{new['total']:>7.2f} {new['lag']:>9.3f} {old['cpu'] / size * 1e3:>14.2f} "
            f"{new['cpu'] / size * 1e3:>14.3f} | {'':>14}{new['show_p99'] * us:>6.1f} "
            f"{new['show_max'] * us:>6.0f}"
        )

    def growth(table: dict[int, dict[str, float]], key: str) -> float:
        return (table[sizes[-1]][key] / sizes[-1]) / (table[sizes[0]][key] / sizes[0])

    load_after = os.getloadavg()
    print(
        f"\nnew cost per token, {sizes[-1]} vs {sizes[0]} tokens (flat is 1.0): "
        f"flood wall {growth(flood, 'total'):.2f}x, flood cpu {growth(flood, 'cpu'):.2f}x, "
        f"paced cpu {growth(paced, 'cpu'):.2f}x"
    )
    print(
        f"load average {load_after[0]:.2f} after; above {os.cpu_count()} means other work shared "
        "the CPUs: wall times and show() maxima then include waiting for a CPU"
    )


if __name__ == "__main__":
    main()
