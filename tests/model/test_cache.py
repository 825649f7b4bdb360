"""Attention spans: each block of queries meets only the keys it can see, in position order."""

import torch

from ossa.model.cache import LayerCache, query_blocks


def test_query_blocks_see_only_their_window():
    blocks = query_blocks(start=20, n=10, window=8, size=4)
    assert [(b.rows, b.first, b.last) for b in blocks] == [
        (slice(0, 4), 13, 23),
        (slice(4, 8), 17, 27),
        (slice(8, 10), 21, 29),
    ]
    first = blocks[0].mask  # query 20 sees the sink and 13..20, query 23 the sink and 16..23
    assert first.shape == (4, 12)
    assert first[0].tolist() == [True] * 9 + [False] * 3
    assert first[3].tolist() == [True, False, False, False] + [True] * 8
    one = query_blocks(start=30, n=1, window=8, size=4)
    assert one[0].mask is None and (one[0].first, one[0].last) == (23, 30)
    assert [(b.first, b.last) for b in query_blocks(0, 6, None, 4)] == [(0, 3), (0, 5)]


def test_a_wrapped_ring_span_comes_back_in_position_order():
    cache = LayerCache(
        1, 2, window=4, ring_slots=6, dtype=torch.float32, device=torch.device("cpu")
    )
    for pos in range(9):  # positions 3..8 stay; slots wrap after 6
        cache.write(torch.full((1, 1, 2), float(pos)), torch.full((1, 1, 2), float(pos)), pos)
    keys, values = cache.span(5, 8)
    assert values[0, :, 0].tolist() == [0.0, 5.0, 6.0, 7.0, 8.0]  # the sink's value is zero
    assert keys[0, 0].tolist() == [0.0, 0.0, 1.0]  # the sink key
    assert keys[0, 1:, 0].tolist() == [5.0, 6.0, 7.0, 8.0]


def test_query_blocks_deep_in_a_long_context_get_fewer_rows():
    blocks = query_blocks(start=10_000, n=512, window=None, size=128, max_scores=100_000)
    assert blocks[0].rows == slice(0, 9) and blocks[-1].rows.stop == 512
    assert all((b.rows.stop - b.rows.start) * (b.last + 2) <= 100_000 for b in blocks)
    assert [b.rows for b in query_blocks(0, 300, None, 128, max_scores=10**9)] == [
        slice(0, 128), slice(128, 256), slice(256, 300)
    ]  # fmt: skip
    windowed = query_blocks(start=10_000, n=512, window=128, size=128, max_scores=100_000)
    assert len(windowed) == 4  # a sliding window's span stays short: full-size blocks
