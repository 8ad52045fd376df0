import numpy as np
import pytest

from latentdirs.data import shapes3d
from latentdirs.data.shapes3d import FACTOR_NAMES, FACTOR_SIZES, make_dataset, render, sample_factors

BASE = np.array([[2, 5, 7, 4, 0, 7]])  # a mid-sized cube seen head-on


def with_factor(name: str, value: int, base=BASE) -> np.ndarray:
    factors = base.copy()
    factors[:, FACTOR_NAMES.index(name)] = value
    return factors


def test_shapes_and_determinism():
    images, factors, masks = make_dataset(50, seed=3)
    again, factors_again, _ = make_dataset(50, seed=3)
    other, _, _ = make_dataset(50, seed=4)
    assert images.shape == (50, 64, 64, 3) and images.dtype == np.uint8
    assert factors.shape == (50, 6) and masks.shape == (50, 64, 64) and masks.dtype == bool
    assert (factors < np.array(FACTOR_SIZES)).all() and (factors >= 0).all()
    np.testing.assert_array_equal(images, again)
    np.testing.assert_array_equal(factors, factors_again)
    assert not np.array_equal(images, other)


def test_render_matches_dataset_and_rejects_bad_factors():
    images, factors, masks = make_dataset(8, seed=0)
    again, masks_again = render(factors)
    np.testing.assert_array_equal(images, again)
    np.testing.assert_array_equal(masks, masks_again)
    with pytest.raises(ValueError, match="out of range"):
        render(with_factor("shape", 4))
    with pytest.raises(ValueError, match="shape"):
        render(np.zeros((3, 5), dtype=int))


def test_object_hue_changes_only_object_pixels():
    (a, b), (mask, mask_b) = render(np.concatenate([with_factor("object_hue", 1), with_factor("object_hue", 6)]))
    np.testing.assert_array_equal(mask, mask_b)
    changed = (a != b).any(-1)
    assert changed[mask].mean() > 0.9 and not changed[~mask].any()


@pytest.mark.parametrize("name", ["floor_hue", "wall_hue"])
def test_background_hues_change_only_their_region(name):
    (a, b), (mask, _) = render(np.concatenate([with_factor(name, 0), with_factor(name, 5)]))
    changed = (a != b).any(-1)
    assert not changed[mask].any()
    floor_rows, wall_rows = changed[56:], changed[:20]  # bottom is always floor, top always wall
    if name == "floor_hue":
        assert floor_rows[~mask[56:]].all() and not wall_rows.any()
    else:
        assert wall_rows.all() and not floor_rows.any()


@pytest.mark.parametrize("shape", range(4))
def test_scale_grows_mask_monotonically(shape):
    factors = np.repeat(with_factor("shape", shape), 8, axis=0)
    factors[:, FACTOR_NAMES.index("scale")] = np.arange(8)
    _, masks = render(factors)
    areas = masks.sum(axis=(1, 2))
    assert (np.diff(areas) > 0).all()


def test_four_shapes_have_distinct_masks():
    factors = np.repeat(BASE, 4, axis=0)
    factors[:, FACTOR_NAMES.index("shape")] = np.arange(4)
    _, masks = render(factors)
    for i in range(4):
        for j in range(i + 1, 4):
            assert (masks[i] != masks[j]).sum() > 20, (shapes3d.SHAPE_NAMES[i], shapes3d.SHAPE_NAMES[j])


def test_orientation_turns_cube_and_room():
    factors = np.repeat(BASE, 3, axis=0)
    factors[:, FACTOR_NAMES.index("orientation")] = [0, 7, 14]
    images, masks = render(factors)
    assert (masks[0] != masks[1]).sum() > 10 and (masks[2] != masks[1]).sum() > 10
    assert (images[0] != images[2]).any(-1)[~masks[0] & ~masks[2]].sum() > 50  # the room corner moved


def test_background_fade_whitens_background_and_keeps_object():
    assert shapes3d.factor_sizes(with_fade=True)[-1] == shapes3d.FADE_SIZE
    base = np.concatenate([BASE, [[0]]], axis=1)
    faded = base.copy()
    faded[0, -1] = shapes3d.FADE_SIZE - 1
    (plain, white), (mask, mask_white) = render(np.concatenate([base, faded]))
    no_fade, _ = render(BASE)
    np.testing.assert_array_equal(plain, no_fade[0])  # fade level 0 is the 6-factor image
    np.testing.assert_array_equal(mask, mask_white)
    assert (white[~mask] == 255).all()
    np.testing.assert_array_equal(white[mask], plain[mask])
    assert make_dataset(5, seed=0, with_fade=True)[1].shape == (5, 7)
    assert sample_factors(5, 0, with_fade=True).shape == (5, 7)
