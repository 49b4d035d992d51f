"""Container v1: header layout, versioning, and refusal of bad streams before any work."""

import struct

import pytest

from sc2deploy.codec import container
from sc2deploy.errors import CodecError


def test_header_is_16_bytes_and_roundtrips():
    data = container.pack((24, 55, 55), 0xBEEF, b"\x01\x02\x03\x04" * 3)
    assert container.HEADER_SIZE == 16 and len(data) == 16 + 12
    assert data[:3] == b"S2\x01"
    header, payload = container.unpack(data)
    assert header.shape == (24, 55, 55) and header.prior_digest == 0xBEEF
    assert header.payload_length == 12 and payload == b"\x01\x02\x03\x04" * 3


def _with_header(**fields):
    values = dict(magic=b"S2", version=1, c=24, h=55, w=55, digest=1, length=4)
    values.update(fields)
    head = container.HEADER.pack(values["magic"], values["version"], values["c"], values["h"],
                                 values["w"], values["digest"], values["length"], 0)[:-2]
    payload = b"\0" * 4
    return head + struct.pack("<H", container._checksum(head, payload)) + payload


@pytest.mark.parametrize("fields,match", [
    ({"magic": b"XX"}, "not an sc2deploy stream"),
    ({"version": 2}, "container version 2; this sc2deploy reads version 1: upgrade"),
    ({"version": 0}, "unknown container version 0"),
    ({"c": 0}, "invalid latent shape"),
    ({"c": 255, "h": 65535, "w": 65535}, "at most 16777216 symbols"),
    ({"length": 3}, "not a whole number of 32-bit words"),
    ({"length": 400}, "truncated stream: header declares 400 payload bytes"),
])
def test_bad_headers(fields, match):
    with pytest.raises(CodecError, match=match):
        container.unpack(_with_header(**fields))


def test_checksum_detects_a_flipped_bit():
    data = bytearray(container.pack((1, 1, 1), 7, b"\xaa" * 8))
    data[-1] ^= 0x10
    with pytest.raises(CodecError, match="checksum mismatch"):
        container.unpack(bytes(data))


def test_truncated_header():
    with pytest.raises(CodecError, match="truncated stream: 5 bytes"):
        container.unpack(b"S2\x01\x00\x00")


def test_unstorable_shape():
    with pytest.raises(CodecError, match="cannot be stored"):
        container.pack((256, 1, 1), 0, b"")
