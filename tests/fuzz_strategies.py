"""Hypothesis strategies for what arrives from outside: msgpack (including maps Python cannot
hold), mutated bytes, and config-shaped data."""

from __future__ import annotations

import struct

import msgpack
from hypothesis import strategies as st

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.binary(max_size=20),
)


def _pack_scalar(value) -> bytes:
    try:
        return msgpack.packb(value, use_bin_type=True)
    except OverflowError:  # beyond msgpack's integers: an out-of-range value is still input
        return b"\xcf" + (abs(int(value)) % 2**64).to_bytes(8, "big")


def _array(items: list[bytes]) -> bytes:
    n = len(items)
    head = bytes([0x90 | n]) if n < 16 else b"\xdc" + struct.pack(">H", n)
    return head + b"".join(items)


def _map(pairs: list[tuple[bytes, bytes]]) -> bytes:
    n = len(pairs)
    head = bytes([0x80 | n]) if n < 16 else b"\xde" + struct.pack(">H", n)
    return head + b"".join(k + v for k, v in pairs)


raw_msgpack = st.recursive(
    scalars.map(_pack_scalar),
    lambda inner: st.one_of(
        st.lists(inner, max_size=5).map(_array),
        # keys may be maps or lists: valid msgpack that Python cannot turn into a dict
        st.lists(st.tuples(inner, inner), max_size=5).map(_map),
    ),
    max_leaves=12,
)
"""Raw msgpack bytes of arbitrary structure, built by hand so map keys can be anything."""

packable = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.binary(max_size=20),
)

COMMANDS = ["ping", "meta", "status", "record_start", "record_stop", "rule_enable", "rule_disable"]
FIELDS = ["cmd", "id", "token", "path", "video", "name", "surprise"]

control_like = st.dictionaries(
    st.sampled_from(FIELDS) | st.text(max_size=8),
    st.sampled_from(COMMANDS) | packable | st.lists(packable, max_size=3),
    max_size=5,
).map(lambda d: msgpack.packb(d, use_bin_type=True))
"""Maps shaped like control requests, with wrong types and extra fields."""


@st.composite
def mutated(draw, valid: bytes) -> bytes:
    """``valid`` with bytes flipped, cut, inserted or duplicated."""
    data = bytearray(valid)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "dup"]))
        if not data:
            data = bytearray(draw(st.binary(min_size=1, max_size=8)))
            continue
        i = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut":
            del data[i:]
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=8))
        else:
            data[i:i] = data[i : i + draw(st.integers(1, 16))]
    return bytes(data)


def any_control_request():
    """Everything a control socket might be sent."""
    valid = [msgpack.packb({"cmd": c}) for c in COMMANDS]
    return st.one_of(
        raw_msgpack,
        control_like,
        st.binary(max_size=64),
        st.sampled_from(valid).flatmap(mutated),
    )
