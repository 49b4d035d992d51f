"""Checkpoint loading: every published key layout and naming generation, and untrusted input."""

import os
import pickle

import numpy as np
import pytest
import torch

from sc2deploy.errors import CheckpointError
from sc2deploy.export.checkpoint import bottleneck_state, load_state_dict
from sc2deploy.export.heads import build_head
from sc2deploy.specs import get_spec
from tests.helpers.reference_models import MATRIX_NAMINGS, compressai_bottleneck, write_checkpoint

PREFIXES = ("backbone.bottleneck_layer.", "backbone.body.bottleneck_layer.",
            "bottleneck_layer.", "")


@pytest.fixture(scope="module")
def reference():
    return compressai_bottleneck(channels=8, seed=1)


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("naming", MATRIX_NAMINGS)
@pytest.mark.parametrize("torchdistill", [True, False])
def test_every_layout_gives_the_same_head(tmp_path, reference, prefix, naming, torchdistill):
    path = tmp_path / "ckpt.pt"
    write_checkpoint(path, reference, prefix, naming, torchdistill=torchdistill)
    state, found = bottleneck_state(load_state_dict(path), "fp")
    assert found == prefix
    assert "entropy_bottleneck.matrices.4" in state and "entropy_bottleneck.factors.3" in state
    assert not any(k.startswith(("layer2", "fc", "backbone.layer2")) for k in state)
    head = build_head(get_spec("entropic_student"), state)
    assert head.tables_source == "checkpoint"
    np.testing.assert_array_equal(head.prior.quantized_cdf,
                                  reference.entropy_bottleneck._quantized_cdf.numpy())


def test_data_parallel_prefix_is_stripped(tmp_path, reference):
    path = tmp_path / "dp.pt"
    write_checkpoint(path, reference, "module.backbone.bottleneck_layer.", tail_keys=False)
    _, found = bottleneck_state(load_state_dict(path), "fp")
    assert found == "backbone.bottleneck_layer."


def test_malicious_pickle_is_refused_without_side_effects(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pt"
    torch.save({"model": {"encoder.0.weight": torch.zeros(1)}, "payload": Exploit()}, path)
    with pytest.raises(CheckpointError, match=r"refused to load .*posix\.system"):
        load_state_dict(path)
    assert not marker.exists()


def test_raw_pickle_with_reduce_is_refused(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"x": Exploit()}, protocol=2))
    with pytest.raises(CheckpointError, match="refused to load"):
        load_state_dict(path)
    assert not marker.exists()


class TrainingConfig:
    """Stands for any class a training script might pickle into its checkpoint."""


def test_other_globals_are_named(tmp_path):
    path = tmp_path / "odd.pt"
    torch.save({"model": {"w": torch.zeros(1)}, "config": TrainingConfig()}, path)
    with pytest.raises(CheckpointError, match=r"test_checkpoint\.TrainingConfig"):
        load_state_dict(path)


def test_missing_and_misshaped_keys_are_listed_together(tmp_path, reference):
    state = {k: v for k, v in reference.state_dict().items()}
    del state["encoder.2.weight"]
    state["encoder.1.gamma"] = torch.zeros(5, 5)
    with pytest.raises(CheckpointError) as info:
        build_head(get_spec("entropic_student"), state)
    message = str(info.value)
    assert "missing encoder.2.weight (expected shape [16, 32, 5, 5])" in message
    assert "encoder.1.gamma has shape [5, 5], expected [32, 32]" in message


def test_unknown_layout_names_what_was_tried(tmp_path):
    path = tmp_path / "x.pt"
    torch.save({"conv.weight": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match="no fp bottleneck found.*'bottleneck_layer."):
        bottleneck_state(load_state_dict(path), "fp")


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "junk.pt"
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_state_dict(path)
    with pytest.raises(CheckpointError, match="not found"):
        load_state_dict(tmp_path / "absent.pt")
