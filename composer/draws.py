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


def uniforms(seed: int, ids: Sequence[str], *purpose: object) -> np.ndarray:
    """One number in [0, 1) per uuid in `ids`, fixed by the seed, the id and the purpose."""
    if len(ids) == 0:
        return np.zeros(0)
    raw = np.frombuffer(bytes.fromhex("".join(ids).replace("-", "")), dtype="<u8").reshape(-1, 2)
    k1, k2 = _key(seed, purpose)
    with np.errstate(over="ignore"):
        x = _mix(_mix(raw[:, 0] ^ k1) ^ raw[:, 1] ^ k2)
    return (x >> np.uint64(11)).astype(np.float64) * 2.0**-53


def uniform(seed: int, record_id: str, *purpose: object) -> float:
    return float(uniforms(seed, [record_id], *purpose)[0])


def generator(seed: int, *purpose: object) -> np.random.Generator:
    """A numpy generator for one purpose (a source's sampling, say), derived from the seed."""
    digest = hashlib.blake2b(repr((seed, *purpose)).encode(), digest_size=16).digest()
    return np.random.default_rng(int.from_bytes(digest, "little"))
