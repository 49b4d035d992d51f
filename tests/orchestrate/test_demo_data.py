"""The demo's generated labeled set: deterministic, ImageFolder layout, balanced, atomic."""

import numpy as np
import pytest
from PIL import Image

from sc2deploy.errors import UsageError
from sc2deploy.measure.evaluate import image_folder
from sc2deploy.orchestrate import demo_data
from sc2deploy.orchestrate.demo_data import CLASSES, EVAL_SEED, TRAIN_SEED, render


def files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_ten_classes_in_imagefolder_order_balanced(tmp_path):
    out = demo_data.write_labeled_set(tmp_path / "set", per_class=2, seed=EVAL_SEED, size=64)
    assert len(CLASSES) == 10 and list(CLASSES) == sorted(CLASSES)
    assert sorted(p.name for p in out.iterdir()) == list(CLASSES)
    data = image_folder(out)
    assert data.class_names == CLASSES
    assert np.bincount(data.labels).tolist() == [2] * 10
    with Image.open(out / "plain" / "0001.png") as img:
        assert img.size == (64, 64) and img.mode == "RGB"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]  # no temporary folder left


def test_same_seed_same_bytes_other_seed_other_images(tmp_path):
    a = files(demo_data.write_labeled_set(tmp_path / "a", 1, EVAL_SEED, size=64))
    b = files(demo_data.write_labeled_set(tmp_path / "b", 1, EVAL_SEED, size=64))
    assert a == b
    assert np.array_equal(render(3, EVAL_SEED, 5), render(3, EVAL_SEED, 5))
    assert not np.array_equal(render(3, EVAL_SEED, 0), render(3, TRAIN_SEED, 0))
    # an image depends on (seed, class, index) only, not on how many are written
    more = files(demo_data.write_labeled_set(tmp_path / "c", 2, EVAL_SEED, size=64))
    assert all(more[k] == v for k, v in a.items())


def test_textures_need_detail_that_low_quality_jpeg_removes():
    """A dotted region's pattern is mostly gone after JPEG at quality 5, not at 90."""
    import io

    img = render(CLASSES.index("dots"), EVAL_SEED, 0)

    def detail(quality):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=quality)
        return np.abs(np.diff(np.asarray(Image.open(buf), dtype=np.float64), axis=1)).mean()

    original = np.abs(np.diff(img.astype(np.float64), axis=1)).mean()
    assert detail(5) < 0.5 * original and detail(90) > 0.7 * original


def test_a_failed_write_keeps_the_old_set(tmp_path, monkeypatch):
    out = demo_data.write_labeled_set(tmp_path / "set", 1, EVAL_SEED, size=48)
    before = files(out)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(demo_data, "render", broken)
    with pytest.raises(OSError, match="disk full"):
        demo_data.write_labeled_set(out, 3, EVAL_SEED, size=48)
    assert files(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(UsageError, match=r"per_class 0: expected an integer >= 1"):
        demo_data.write_labeled_set(tmp_path / "x", 0, EVAL_SEED)
    with pytest.raises(UsageError, match=r"size 8: expected an integer >= 32"):
        demo_data.write_labeled_set(tmp_path / "x", 1, EVAL_SEED, size=8)
    assert not (tmp_path / "x").exists()
