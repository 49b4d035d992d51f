"""Runner output: symbols the runtime got wrong are a device error, never wrapped or cast."""

import numpy as np
import pytest

from sc2deploy.errors import DeviceError, Sc2DeployError, UsageError
from sc2deploy.targets.runner import to_int32_symbols


def test_integer_floats_become_int32():
    out = to_int32_symbols(np.array([[-3.0, 0.0, 7.0]], np.float32))
    assert out.dtype == np.int32 and out.tolist() == [[-3, 0, 7]]


@pytest.mark.parametrize("values,match", [
    (np.array([1.0, np.nan, np.inf]), r"the head produced 2 NaN or infinite symbols of 3, "
                                      r"expected finite integers: .*sc2deploy verify BUNDLE"),
    (np.array([0.0, 3e9]), r"symbols in \[0, 3e\+09\], beyond the int32 range expected"),
])
def test_garbage_from_the_runtime_is_a_device_error(values, match):
    with pytest.raises(DeviceError, match=match):
        to_int32_symbols(values)
    assert issubclass(DeviceError, Sc2DeployError) and not issubclass(DeviceError, UsageError)


def test_server_runner_returns_the_models_float_output(tmp_path, head_only_bundle):
    """decoder.onnx / tail.onnx run through the same contract, float32 in and out."""
    import shutil

    from tests.helpers.reference_models import classification_student, write_student
    from sc2deploy.export import ExportOptions, export_bundle
    from sc2deploy.preprocess import sample_images
    from sc2deploy.targets import load_runner, load_server_runner

    ckpt = tmp_path / "s.pt"
    write_student(ckpt, classification_student(), "sc2bench")
    bundle = export_bundle(ExportOptions(model="entropic_student", checkpoint=ckpt,
                                         out=tmp_path / "b", images=sample_images()[:1]))
    x = bundle.preprocessing()(sample_images()[0])
    with load_runner(bundle, "onnx") as head, load_server_runner(bundle, "tail") as tail:
        logits = tail.infer(head.infer(x).astype(np.float32))
        assert logits.dtype == np.float32 and logits.shape == (1, 10)
        with pytest.raises(UsageError, match=r"Input tensor: symbols \| Received incompatible"):
            tail.infer(np.zeros((1, 8, 3, 3), np.float32))
    with pytest.raises(UsageError, match="has no 'tail' model; it has: none"):
        load_server_runner(head_only_bundle, "tail")
    shutil.rmtree(tmp_path / "b")


