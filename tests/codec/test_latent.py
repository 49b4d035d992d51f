"""Latent coding: lossless at the extremes, tight, and strict about its inputs."""

import numpy as np
import pytest

from sc2deploy.codec import LatentCodec, constriction_available
from sc2deploy.codec.container import HEADER_SIZE
from sc2deploy.errors import CodecError

INT32 = np.iinfo(np.int32)


@pytest.fixture(scope="module")
def prior(demo_bundle):
    return demo_bundle.prior()


@pytest.fixture(scope="module")
def latents(demo_bundle):
    return demo_bundle.reference()["symbols"].astype(np.int32)


def coders():
    return ["c", "constriction"] if constriction_available() else ["c"]


@pytest.mark.parametrize("coder", coders())
def test_roundtrip_and_size_near_ideal(prior, latents, coder):
    codec = LatentCodec(prior, coder)
    for latent in latents[:4]:
        data = codec.encode(latent)
        np.testing.assert_array_equal(codec.decode(data), latent)
        ideal = prior.bits_per_symbol(latent) * latent.size / 8
        assert len(data) - HEADER_SIZE <= ideal * 1.0005 + 8


@pytest.mark.parametrize("coder", coders())
def test_escapes_at_the_extremes_are_lossless(prior, latents, coder):
    codec = LatentCodec(prior, coder)
    latent = latents[0].copy()
    extremes = [INT32.min, INT32.max, -30000, 30000, INT32.min + 1, INT32.max - 1]
    for i, value in enumerate(extremes):
        latent[i % latent.shape[0], i, i] = value
    n = int(prior.pmf_lengths[0])
    off = int(prior.offsets[0])
    latent[0, 10, :4] = [off - 1, off + n, off, off + n - 1]  # just outside / at the edges
    data = codec.encode(latent)
    np.testing.assert_array_equal(codec.decode(data), latent)


def test_every_symbol_escaped(prior):
    codec = LatentCodec(prior)
    rng = np.random.default_rng(0)
    latent = rng.integers(INT32.min, INT32.max, size=(prior.channels, 8, 8),
                          dtype=np.int64).astype(np.int32)
    np.testing.assert_array_equal(codec.decode(codec.encode(latent)), latent)


def test_float_latents_must_be_integral(prior, latents):
    codec = LatentCodec(prior)
    ok = latents[0].astype(np.float32)
    np.testing.assert_array_equal(codec.decode(codec.encode(ok)), latents[0])
    bad = ok.copy()
    bad[0, 0, 0] = 0.5
    with pytest.raises(CodecError, match="non-integer"):
        codec.encode(bad)
    bad[0, 0, 0] = np.nan
    with pytest.raises(CodecError, match="non-integer or non-finite"):
        codec.encode(bad)
    with pytest.raises(CodecError, match="exceed the int32 range"):
        codec.encode(np.full((prior.channels, 1, 1), 2**40, dtype=np.int64))
    with pytest.raises(CodecError, match=rf"expected \[C,H,W\] with C={prior.channels}"):
        codec.encode(np.zeros((3, 4, 4), dtype=np.int32))


def test_stream_for_another_prior_is_refused(prior, latents):
    from sc2deploy.prior import PriorTables

    other = PriorTables(prior.medians + 1, prior.offsets, prior.quantized_cdf, prior.cdf_lengths)
    data = LatentCodec(other).encode(latents[0])
    with pytest.raises(CodecError, match="another prior"):
        LatentCodec(prior).decode(data)


def test_batch_files(prior, latents):
    codec = LatentCodec(prior)
    batch = b"".join(codec.encode(x) for x in latents[:3])
    decoded = codec.decode_batch(batch, expected_shape=latents.shape[1:])
    np.testing.assert_array_equal(np.stack(decoded), latents[:3])
    with pytest.raises(CodecError, match="unexpected bytes"):
        codec.decode(batch)
    with pytest.raises(CodecError, match="differs from the bundle"):
        codec.decode_batch(batch, expected_shape=(prior.channels, 5, 5))


def _random_prior(rng, channels):
    from sc2deploy.export.tables import pmf_to_quantized_cdf
    from sc2deploy.prior import PriorTables

    rows = []
    for _ in range(channels):
        n = int(rng.integers(1, 2001))
        p = rng.exponential(size=n + 1) ** rng.choice([1, 6])
        rows.append(pmf_to_quantized_cdf((p / p.sum()).astype(np.float32)))
    width = max(r.size for r in rows)
    cdf = np.zeros((channels, width), np.int32)
    for i, r in enumerate(rows):
        cdf[i, : r.size] = r
    return PriorTables(medians=rng.normal(size=channels).astype(np.float32),
                       offsets=-rng.integers(0, 1000, size=channels).astype(np.int32),
                       quantized_cdf=cdf,
                       cdf_lengths=np.array([r.size for r in rows], np.int32))


@pytest.mark.skipif(not constriction_available(), reason="constriction is not installed")
def test_containers_are_identical_across_coders_on_random_priors():
    rng = np.random.default_rng(7)
    mismatches = 0
    for case in range(150):
        prior = _random_prior(rng, int(rng.integers(1, 9)))
        shape = (prior.channels, int(rng.integers(1, 20)), int(rng.integers(1, 20)))
        spread = rng.choice([3, 300, 3000, 2**31 - 1])
        latent = rng.integers(-spread, spread, size=shape, dtype=np.int64)
        latent = np.clip(latent, INT32.min, INT32.max).astype(np.int32)
        a = LatentCodec(prior, "c").encode(latent)
        b = LatentCodec(prior, "constriction").encode(latent)
        back_a = LatentCodec(prior, "constriction").decode(a)
        back_b = LatentCodec(prior, "c").decode(b)
        mismatches += not (a == b and np.array_equal(back_a, latent)
                           and np.array_equal(back_b, latent))
    assert mismatches == 0


@pytest.mark.skipif(not constriction_available(), reason="constriction is not installed")
def test_coders_agree_on_corrupt_and_hostile_streams(prior, latents):
    from sc2deploy.codec import container

    c_codec, k_codec = LatentCodec(prior, "c"), LatentCodec(prior, "constriction")
    digest = container.prior_digest16(prior.digest())
    rng = np.random.default_rng(11)
    seeds = [c_codec.encode(x) for x in latents[:3]]

    def outcome(codec, data):
        try:
            return codec.decode(data).tobytes()
        except CodecError:
            return "refused"

    def reseal(data):
        head, payload = data[:14], data[16:]
        return head + container._checksum(head, payload).to_bytes(2, "little") + payload

    outcomes = set()
    for i in range(1500):
        if i % 2:
            data = bytearray(seeds[i % 3])
            data[int(rng.integers(16, len(data)))] ^= 1 << int(rng.integers(8))
            data = reseal(bytes(data))
        else:
            payload = rng.integers(0, 256, size=4 * int(rng.integers(0, 64)), dtype=np.uint8)
            head = container.HEADER.pack(b"S2", 1, 24, int(rng.integers(1, 30)),
                                         int(rng.integers(1, 30)), digest, payload.size, 0)
            data = reseal(head + payload.tobytes())
        got = outcome(c_codec, data)
        assert got == outcome(k_codec, data)
        outcomes.add(got == "refused")
    assert outcomes == {True, False}
