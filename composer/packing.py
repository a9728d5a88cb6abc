"""Packing: merge similar short single-turn items into longer multi-turn conversations.

The orca-chat idea (shahules786/orca-chat): OpenOrca's items are single questions with one
answer; chaining questions on one topic into a conversation teaches a model to keep
answering in context. Here:

- Only single-turn SFT items take part: an optional system turn, one human, one gpt turn.
  Anything else (multi-turn, tool calls, DPO, text) passes through unchanged.
- Each item's human turn is embedded with the static model the decontamination uses
  (normalized vectors, so inner product is cosine), and faiss finds its nearest items.
- Greedy, deterministic chaining: items are visited in a seeded order; the first unused one
  starts a conversation, which then grows by the most similar unused neighbour of its last
  item with cosine >= `min_similarity` that keeps the conversation within `max_chars`
  characters (all turn values, the system prompt once) and `max_turns` exchanges.
- A conversation keeps its first item's system prompt, so only items with the same system
  prompt (or, like the first, none) can join it: an answer written under one system prompt
  would not fit under another.
- A packed conversation takes its first item's id (so dedup and the split by id keep
  working) and its meta, with `"packed_from"`: the ids of all its items, in order. It sits
  where its first item was; the items merged into it are gone. Rows keep the input's order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from composer.draws import uniforms
from composer.manifest import Packing
from composer.records import dumps_meta

NEIGHBOURS = 16  # nearest items looked at for each item
SEARCH_BATCH = 65536  # texts per embedding batch and queries per faiss search
TRAIN_PER_CELL, TRAIN_ITERATIONS = 32, 10  # k-means of the inverted index (see _index)
_ROLES = pa.array(["system", "human", "gpt"])
_CHUNK_CHARS = 1 << 30  # characters per chunk of the packed conversations (int32 offsets)


@dataclass
class Packed:
    table: pa.Table  # records: packed conversations plus the items left as they were
    packed: int  # input items merged into another conversation (the funnel's `packed`)
    conversations: int  # packed conversations made


@dataclass
class _Items:
    """The single-turn SFT items of a table, as arrays over those items."""

    rows: np.ndarray  # row in the table
    start: np.ndarray  # first turn (the system turn, if any) in the flattened turns
    system: np.ndarray  # 1 if the item has a system turn, else 0
    system_code: np.ndarray  # the system prompt's code: equal codes, equal prompts
    chars: np.ndarray  # characters of the human and gpt turns
    system_chars: np.ndarray  # characters of the system turn (0 without one)


def pack(table: pa.Table, spec: Packing, seed: int, source: str) -> Packed:
    """Chain the table's similar single-turn SFT items into multi-turn conversations.

    `seed` and `source` fix the order in which items start conversations (see module doc).
    Returns rows in the input's order, the number of items merged into others (rows in
    minus rows out), and the number of packed conversations.
    """
    flat = pc.list_flatten(table.column("conversations"))
    items = _single_turn(table, flat)
    if len(items.rows) < 2:
        return Packed(table, 0, 0)
    neighbours = _neighbours(flat, items, spec.min_similarity)
    ids = table.column("id").take(pa.array(items.rows)).to_pylist()
    order = np.argsort(uniforms(seed, ids, "pack", source), kind="stable")
    members, lengths = _chain(order, neighbours, items, spec.max_chars, spec.max_turns)
    keep = lengths >= 2
    if not keep.any():
        return Packed(table, 0, 0)
    chain_of = np.repeat(np.arange(len(lengths)), lengths)
    members, lengths = members[keep[chain_of]], lengths[keep]
    firsts = members[np.cumsum(lengths) - lengths]
    packed = _packed_records(table, flat, items, members, lengths, firsts, ids)
    gone = np.zeros(table.num_rows, bool)
    gone[items.rows[members]] = True
    left = np.flatnonzero(~gone)
    where = np.concatenate([left, items.rows[firsts]])
    out = pa.concat_tables([table.take(pa.array(left)), packed]).take(
        pa.array(np.argsort(where, kind="stable"))
    )
    return Packed(out, int(lengths.sum() - len(lengths)), len(lengths))


def _single_turn(table: pa.Table, flat: pa.ChunkedArray) -> _Items:
    """Which rows are single-turn SFT items: [system], human, gpt; found on whole columns."""
    lengths = pc.fill_null(pc.list_value_length(table.column("conversations")), 0)
    lengths = lengths.to_numpy().astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])[:-1]
    roles = pc.fill_null(pc.index_in(pc.struct_field(flat, "from"), _ROLES), -1)
    roles = np.append(roles.to_numpy(), [-1, -1, -1])  # padding: reads past the end are -1
    system = (lengths == 3).astype(np.int64)
    human = offsets + system
    ok = (lengths == 2) | ((lengths == 3) & (roles[offsets] == 0))
    ok &= (roles[human] == 1) & (roles[human + 1] == 2)
    ok &= pc.fill_null(pc.equal(table.column("kind"), "sft"), False).to_numpy()
    rows = np.flatnonzero(ok)
    start, system, human = offsets[rows], system[rows], human[rows]
    chars = pc.utf8_length(pc.struct_field(flat, "value")).to_numpy().astype(np.int64)
    chars = np.append(chars, 0)
    system_chars = np.where(system == 1, chars[start], 0)
    has = system == 1
    prompts = pc.struct_field(flat, "value").take(pa.array(start[has]))
    code = np.full(len(rows), -1, np.int64)  # -1: no system prompt
    if has.any():
        code[has] = pc.dictionary_encode(prompts.combine_chunks()).indices.to_numpy()
    return _Items(
        rows=rows,
        start=start,
        system=system,
        system_code=code,
        chars=chars[human] + chars[human + 1],
        system_chars=system_chars,
    )


def _neighbours(flat: pa.ChunkedArray, items: _Items, min_similarity: float) -> np.ndarray:
    """Each item's candidate neighbours, most similar first, padded with -1: other items
    whose human turn is at cosine >= min_similarity and whose system prompt is the same."""
    from composer.embeddings import StaticEmbedder

    embedder = StaticEmbedder()
    humans = pc.struct_field(flat, "value").take(pa.array(items.start + items.system))
    n = len(humans)
    vectors = np.empty((n, embedder.dims), np.float32)
    for begin in range(0, n, SEARCH_BATCH):
        batch = humans.slice(begin, SEARCH_BATCH).to_pylist()
        vectors[begin : begin + len(batch)] = embedder.encode(batch)
    index = _index(vectors)
    k = min(NEIGHBOURS + 1, n)  # + 1: an item finds itself
    out = np.empty((n, k), np.int64)
    for begin in range(0, n, SEARCH_BATCH):
        sims, found = index.search(vectors[begin : begin + SEARCH_BATCH], k)
        mine = np.arange(begin, begin + len(found))[:, None]
        valid = (found >= 0) & (found != mine) & (sims >= min_similarity)
        safe = np.where(found >= 0, found, 0)
        valid &= items.system_code[safe] == items.system_code[mine]
        found = np.where(valid, found, -1)
        # Valid ones first, in faiss's order (most similar first); -1 ends a row.
        first = np.argsort(~valid, axis=1, kind="stable")
        out[begin : begin + len(found)] = np.take_along_axis(found, first, axis=1)
    return out


def _index(vectors: np.ndarray):
    """decontaminate's `item_index`, trained on less above 20,000 items.

    Its k-means trains on up to 256 points per cell for 25 iterations, over n^1.5 work:
    about half a minute for 100,000 items and several for a million, where the same index
    trained on a seeded sample of 32 points per cell for 10 iterations takes a few seconds
    and finds as many neighbours above the similarity bar (measured).
    """
    import faiss

    from composer.decontaminate import item_index

    n, dims = vectors.shape
    if n < 20_000:
        return item_index(vectors)
    cells = int(4 * np.sqrt(n))
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dims), dims, cells, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = 1234
    index.cp.max_points_per_centroid = TRAIN_PER_CELL
    index.cp.niter = TRAIN_ITERATIONS
    index.train(vectors)
    index.nprobe = 16
    index.add(vectors)
    if getattr(faiss, "get_num_gpus", lambda: 0)() > 0:  # faiss-gpu on a machine with a GPU
        index = faiss.index_cpu_to_all_gpus(index)
    return index


def _chain(
    order: np.ndarray, neighbours: np.ndarray, items: _Items, max_chars: int, max_turns: int
) -> tuple[np.ndarray, np.ndarray]:
    """The greedy chaining (sequential by nature): every item in exactly one chain.

    Returns the items chain after chain, and each chain's length.
    """
    neighbours = neighbours[:, : max(1, int((neighbours >= 0).sum(1).max()))]
    chars = items.chars.tolist()
    totals = (items.chars + items.system_chars).tolist()
    used = bytearray(len(chars))
    members: list[int] = []
    lengths: list[int] = []
    for first in order.tolist():
        if used[first]:
            continue
        used[first] = 1
        members.append(first)
        total, turns, last = totals[first], 1, first
        while turns < max_turns:
            nearest = -1
            for j in neighbours[last].tolist():
                if j < 0:
                    break
                if not used[j] and total + chars[j] <= max_chars:
                    nearest = j
                    break
            if nearest < 0:
                break
            used[nearest] = 1
            members.append(nearest)
            total += chars[nearest]
            turns += 1
            last = nearest
        lengths.append(turns)
    return np.array(members, np.int64), np.array(lengths, np.int64)


def _packed_records(
    table: pa.Table,
    flat: pa.ChunkedArray,
    items: _Items,
    members: np.ndarray,
    lengths: np.ndarray,
    firsts: np.ndarray,
    ids: list[str],
) -> pa.Table:
    """The packed conversations: the first item's turns whole (its system turn with them),
    then each other item's human and gpt turns; the first item's row otherwise."""
    is_first = np.zeros(len(members), bool)
    is_first[np.cumsum(lengths) - lengths] = True
    begin = np.where(is_first, items.start[members], items.start[members] + items.system[members])
    count = 2 + np.where(is_first, items.system[members], 0)
    total = int(count.sum())
    gather = np.arange(total) - np.repeat(np.cumsum(count) - count, count) + np.repeat(begin, count)
    chain_of = np.repeat(np.arange(len(lengths)), lengths)
    turns = np.bincount(chain_of, weights=count, minlength=len(lengths)).astype(np.int64)
    conv_chars = (
        np.bincount(chain_of, weights=items.chars[members], minlength=len(lengths))
        + items.system_chars[firsts]
    )
    list_type = table.schema.field("conversations").type
    chunk = (np.cumsum(conv_chars) - conv_chars) // _CHUNK_CHARS  # a chunk per 2^30 chars
    bounds = np.concatenate([[0], np.flatnonzero(np.diff(chunk)) + 1, [len(lengths)]])
    turn_offsets = np.concatenate([[0], np.cumsum(turns)])
    chunks = []
    for a, b in pairwise(bounds):
        lo, hi = turn_offsets[a], turn_offsets[b]
        values = flat.take(pa.array(gather[lo:hi])).combine_chunks()
        offsets = pa.array((turn_offsets[a : b + 1] - lo).astype(np.int32))
        chunks.append(pa.ListArray.from_arrays(offsets, values).cast(list_type))
    conversations = pa.chunked_array(chunks, list_type)
    first_rows = pa.array(items.rows[firsts])
    metas = table.column("meta").take(first_rows).to_pylist()
    member_ids = np.array(ids, object)[members]
    meta = [
        dumps_meta({**json.loads(m or "{}"), "packed_from": member_ids[lo:hi].tolist()})
        for m, lo, hi in zip(metas, np.cumsum(lengths) - lengths, np.cumsum(lengths))
    ]
    out = table.take(first_rows)
    out = _replace(out, "conversations", conversations)
    return _replace(out, "meta", pa.array(meta, out.schema.field("meta").type))


def _replace(table: pa.Table, name: str, column: pa.Array | pa.ChunkedArray) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), table.schema.field(name), column)
