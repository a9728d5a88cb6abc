"""Seeded random draws keyed by what they are for, not by the order they happen in.

A draw for (seed, record id, purpose) is the same wherever and whenever it is made, so
adding a source, a format or a worker never changes the choices made for other records.
Record ids are uuids, so a draw is a seeded integer mix of the id's 128 bits: whole
columns of draws cost a few numpy operations.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _mix(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser: a bijective, well-spread scramble of 64-bit integers."""
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def _key(seed: int, purpose: tuple) -> tuple[np.uint64, np.uint64]:
    digest = hashlib.blake2b(repr((seed, *purpose)).encode(), digest_size=16).digest()
    return (
        np.uint64(int.from_bytes(digest[:8], "little")),
        np.uint64(int.from_bytes(digest[8:], "little")),
    )


def uniforms(seed: int, ids: Sequence[str] | pa.Array, *purpose: object) -> np.ndarray:
    """One number in [0, 1) per uuid in `ids` (strings, or an Arrow string array: read from
    its bytes, no Python string an id), fixed by the seed, the id and the purpose."""
    return draw_bits(seed, ids, *purpose).astype(np.float64) * 2.0**-53


def draw_bits(seed: int, ids: Sequence[str] | pa.Array, *purpose: object) -> np.ndarray:
    """`uniforms` as the integers they are made of (below 2**53, ordered as the draws):
    exact bin edges for the split's counts (composer.split)."""
    if len(ids) == 0:
        return np.zeros(0, np.uint64)
    digits = _arrow_hex(ids) if isinstance(ids, pa.Array) else "".join(ids).replace("-", "")
    raw = np.frombuffer(bytes.fromhex(digits), dtype="<u8").reshape(-1, 2)
    k1, k2 = _key(seed, purpose)
    with np.errstate(over="ignore"):
        x = _mix(_mix(raw[:, 0] ^ k1) ^ raw[:, 1] ^ k2)
    return x >> np.uint64(11)


def _arrow_hex(ids: pa.Array) -> str:
    """The hex digits of an Arrow array of uuids, joined (as `"".join(ids)` without dashes)."""
    import pyarrow.compute as pc

    digits = pc.replace_substring(ids, "-", "")
    offsets = np.frombuffer(digits.buffers()[1], dtype=np.int32)
    start, end = offsets[digits.offset], offsets[digits.offset + len(digits)]
    return digits.buffers()[2].to_pybytes()[start:end].decode("ascii")


def uniform(seed: int, record_id: str, *purpose: object) -> float:
    return float(uniforms(seed, [record_id], *purpose)[0])


def generator(seed: int, *purpose: object) -> np.random.Generator:
    """A numpy generator for one purpose (a source's sampling, say), derived from the seed."""
    digest = hashlib.blake2b(repr((seed, *purpose)).encode(), digest_size=16).digest()
    return np.random.default_rng(int.from_bytes(digest, "little"))
