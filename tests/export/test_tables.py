"""Entropy tables equal CompressAI's update() bit for bit (1.2.8; 1.1.9 in a subprocess)."""

import logging
import re

import numpy as np
import pytest
import torch

from sc2deploy.errors import PriorError, UsageError
from sc2deploy.export import ExportOptions, export_bundle
from sc2deploy.export.checkpoint import bottleneck_state, entropy_naming, load_state_dict
from sc2deploy.export.heads import build_head
from sc2deploy.export.tables import (PLAIN, SIGN_TRICK, TABLE_FORMULAS, choose_formula,
                                     pmf_to_quantized_cdf)
from sc2deploy.log import logger
from sc2deploy.preprocess import sample_images
from sc2deploy.specs import get_spec
from tests.helpers import compressai_ref
from tests.helpers.reference_models import (TABLE_BUFFERS, compressai_bottleneck,
                                            rename_entropy_keys, write_checkpoint)


def _random_pmfs(rng, count):
    for i in range(count):
        n = int(rng.integers(1, 300))
        kind = i % 3
        if kind == 0:  # skewed, many tiny probabilities that need stolen frequency
            p = rng.exponential(size=n) ** 6
        elif kind == 1:  # flat
            p = np.ones(n)
        else:  # peaked with exact zeros
            p = rng.random(n) * (rng.random(n) < 0.3)
            p[rng.integers(n)] = 1.0
        yield (p / p.sum()).astype(np.float32)


def test_quantized_cdf_equals_compressai_cxx():
    _, _, cxx = compressai_ref.load()
    rng = np.random.default_rng(0)
    for pmf in _random_pmfs(rng, 300):
        expected = np.array(cxx.pmf_to_quantized_cdf(pmf.tolist(), 16), dtype=np.int64)
        np.testing.assert_array_equal(pmf_to_quantized_cdf(pmf), expected)


def test_quantized_cdf_rejects_bad_pmf():
    with pytest.raises(PriorError, match="finite, non-negative"):
        pmf_to_quantized_cdf(np.array([0.5, np.nan], dtype=np.float32))
    with pytest.raises(PriorError, match="rounds to zero"):
        pmf_to_quantized_cdf(np.zeros(4, dtype=np.float32))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_computed_tables_equal_compressai_update(seed):
    ref = compressai_bottleneck(channels=12, seed=seed)
    eb = ref.entropy_bottleneck
    state = {k: v for k, v in ref.state_dict().items()}
    for name in ("_offset", "_quantized_cdf", "_cdf_length"):
        state[f"entropy_bottleneck.{name}"] = torch.zeros(0, dtype=torch.int32)
    head = build_head(get_spec("entropic_student"), state)
    assert head.tables_source == "computed"
    np.testing.assert_array_equal(head.prior.quantized_cdf, eb._quantized_cdf.numpy())
    np.testing.assert_array_equal(head.prior.offsets, eb._offset.numpy())
    np.testing.assert_array_equal(head.prior.cdf_lengths, eb._cdf_length.numpy())
    np.testing.assert_array_equal(head.prior.medians, eb.quantiles[:, 0, 1].detach().numpy())


def test_stored_tables_are_used_even_when_they_differ(tmp_path):
    ref = compressai_bottleneck(channels=4, seed=3)
    state = dict(ref.state_dict())
    stored = state["entropy_bottleneck._quantized_cdf"].clone()
    state["entropy_bottleneck.quantiles"] = state["entropy_bottleneck.quantiles"] + 0.0
    state["entropy_bottleneck.matrices.0"] = state["entropy_bottleneck.matrices.0"] * 3
    head = build_head(get_spec("entropic_student"), state)
    assert head.tables_source == "checkpoint"
    np.testing.assert_array_equal(head.prior.quantized_cdf, stored.numpy())


def test_partial_tables_are_an_error():
    ref = compressai_bottleneck(channels=4, seed=3)
    state = dict(ref.state_dict())
    state["entropy_bottleneck._offset"] = torch.zeros(0, dtype=torch.int32)
    from sc2deploy.errors import CheckpointError

    with pytest.raises(CheckpointError, match="not \\['_offset'\\]"):
        build_head(get_spec("entropic_student"), state)


# -- which pmf formula: CompressAI <= 1.2.4 (sign trick) or >= 1.2.6 ------------------------

SINGH_PREFIX = "backbone.bottleneck_layer."


@pytest.fixture(scope="module")
def old_reference(tmp_path_factory):
    """A never-update()d checkpoint written by the real CompressAI 1.1.9, and its update() tables."""
    folder = tmp_path_factory.mktemp("compressai-1.1.9")
    ckpt, tables = folder / "singh.pt", folder / "tables.npz"
    compressai_ref.run_old(
        "from tests.helpers import reference_models\n"
        f"reference_models.write_unupdated_reference(r'{ckpt}', r'{tables}', "
        f"{SINGH_PREFIX!r}, channels=24, seed=0)\n")
    return ckpt, dict(np.load(tables))


def _tables_by_formula(state):
    spec = get_spec("singh")
    return {f: build_head(spec, state, choose_formula(f)).prior for f in (SIGN_TRICK, PLAIN)}


def _differing_channels(tables):
    a, b = tables[SIGN_TRICK].quantized_cdf, tables[PLAIN].quantized_cdf
    return np.flatnonzero(np.any(a != b, axis=1))


def _assert_tables_equal(prior, expected):
    np.testing.assert_array_equal(prior.quantized_cdf, expected["quantized_cdf"])
    np.testing.assert_array_equal(prior.offsets, expected["offsets"])
    np.testing.assert_array_equal(prior.cdf_lengths, expected["cdf_lengths"])
    np.testing.assert_array_equal(prior.medians, expected["medians"])


def test_export_of_unupdated_compressai_1_1_9_checkpoint_equals_its_update(old_reference, tmp_path):
    ckpt, expected = old_reference
    raw = load_state_dict(ckpt)
    assert entropy_naming(raw) == "_matrix{i}"
    for name in TABLE_BUFFERS:
        assert raw[f"{SINGH_PREFIX}entropy_bottleneck.{name}"].numel() == 0
    state, _ = bottleneck_state(raw, "fp")
    differing = _differing_channels(_tables_by_formula(state))
    assert differing.size >= 1, "this prior cannot tell the two formulas apart; pick another seed"

    paths = sample_images()[:1]
    bundle = export_bundle(ExportOptions(model="singh", checkpoint=ckpt, out=tmp_path / "b",
                                         images=paths))
    _assert_tables_equal(bundle.prior(), expected)
    entry = bundle.manifest["prior"]
    assert entry["tables_source"] == "computed"
    assert entry["tables_formula"]["formula"] == SIGN_TRICK
    assert entry["tables_formula"]["requested"] == "auto"
    assert "_matrix{i}" in entry["tables_formula"]["reason"]
    assert bundle.manifest["provenance"]["tables_formula"] == entry["tables_formula"]


def test_pre_release_names_and_explicit_choice_use_the_sign_trick(old_reference):
    ckpt, expected = old_reference
    plural = {"matrix": "matrices", "bias": "biases", "factor": "factors"}
    raw = {re.sub(r"entropy_bottleneck\._(matrix|bias|factor)(\d+)$",
                  lambda m: f"entropy_bottleneck._{plural[m[1]]}.{m[2]}", k): v
           for k, v in load_state_dict(ckpt).items()}  # _matrix0 -> _matrices.0 (pre-1.0)
    assert entropy_naming(raw) == "_matrices.{i}"
    state, _ = bottleneck_state(raw, "fp")
    spec = get_spec("singh")
    _assert_tables_equal(build_head(spec, state, choose_formula("auto", "_matrices.{i}")).prior,
                         expected)
    _assert_tables_equal(build_head(spec, state, choose_formula(SIGN_TRICK)).prior, expected)


def test_export_of_unupdated_matrices_checkpoint_equals_compressai_1_2_8(tmp_path):
    ref = compressai_bottleneck(channels=24, seed=0, update=False)
    ckpt = tmp_path / "student.pt"
    write_checkpoint(ckpt, ref, SINGH_PREFIX, naming="matrices.{i}")
    eb = ref.entropy_bottleneck
    with torch.no_grad():
        eb.update(force=True)
    expected = {"quantized_cdf": eb._quantized_cdf.numpy(), "offsets": eb._offset.numpy(),
                "cdf_lengths": eb._cdf_length.numpy(),
                "medians": eb.quantiles[:, 0, 1].detach().numpy()}
    raw = load_state_dict(ckpt)
    assert entropy_naming(raw) == "matrices.{i}"
    state, _ = bottleneck_state(raw, "fp")
    assert _differing_channels(_tables_by_formula(state)).size >= 1

    bundle = export_bundle(ExportOptions(model="entropic_student", checkpoint=ckpt,
                                         out=tmp_path / "b", images=sample_images()[:1]))
    _assert_tables_equal(bundle.prior(), expected)
    assert bundle.manifest["prior"]["tables_formula"]["formula"] == PLAIN
    assert "matrices.{i}" in bundle.manifest["prior"]["tables_formula"]["reason"]

    # CompressAI 1.2.6 wrote _matrix{i} names with the newer pmf: chosen explicitly
    old_names, _ = bottleneck_state(rename_entropy_keys(raw, "_matrix{i}"), "fp")
    assert entropy_naming(rename_entropy_keys(raw, "_matrix{i}")) == "_matrix{i}"
    _assert_tables_equal(build_head(get_spec("singh"), old_names, choose_formula(PLAIN)).prior,
                         expected)


def test_formula_is_not_used_with_stored_tables_and_says_so(tmp_path):
    seen = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    logger.addHandler(handler)
    try:
        bundle = export_bundle(ExportOptions(model="demo", out=tmp_path / "b",
                                             images=sample_images()[:1],
                                             tables_formula=SIGN_TRICK))
    finally:
        logger.removeHandler(handler)
    entry = bundle.manifest["prior"]
    assert entry["tables_source"] == "checkpoint"
    assert entry["tables_formula"]["formula"] is None
    assert entry["tables_formula"]["requested"] == SIGN_TRICK
    assert "not used" in entry["tables_formula"]["reason"]
    assert any("compressai-1.2.4 (--tables-formula) not used" in m and "stores" in m
               for m in seen), seen


@pytest.mark.parametrize("naming,formula", [
    ("_matrix{i}", SIGN_TRICK), ("_matrices.{i}", SIGN_TRICK), ("matrices.{i}", PLAIN),
    (None, PLAIN),
])
def test_auto_rule(naming, formula):
    chosen = choose_formula("auto", naming)
    assert chosen.name == formula and chosen.requested == "auto"
    assert choose_formula(PLAIN, "_matrix{i}").name == PLAIN
    assert choose_formula(SIGN_TRICK, "matrices.{i}").name == SIGN_TRICK


def test_unknown_formula_is_a_usage_error_and_cli_offers_the_same_names():
    with pytest.raises(UsageError, match="unknown tables formula 'compressai-1.2.5'; choose one "
                                         "of auto, compressai-1.2.4, compressai-1.2.6"):
        choose_formula("compressai-1.2.5")
    from sc2deploy.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    export = sub.choices["export"]
    action = next(a for a in export._actions if a.dest == "tables_formula")
    assert tuple(action.choices) == TABLE_FORMULAS
    from sc2deploy.export import ExportOptions

    assert ExportOptions("demo", "out").tables_formula == "auto"  # flags not given: the field's


def test_mixed_namings_are_an_error():
    from sc2deploy.errors import CheckpointError

    t = torch.zeros(1)
    with pytest.raises(CheckpointError, match="several CompressAI styles"):
        entropy_naming({"entropy_bottleneck._matrix0": t, "entropy_bottleneck.matrices.1": t})
