"""Patch sampling: sizes, foreground oversampling, mirrored borders, determinism, valid-net crops."""

import numpy as np

from unetkit.data.sampling import PatchDataset, centre_crop


def _images():
    rng = np.random.default_rng(0)
    big = rng.random((1, 120, 90)).astype(np.float32)
    small = rng.random((1, 20, 30)).astype(np.float32)  # smaller than the patch: mirrored
    big_target = np.zeros((120, 90), np.uint8)
    big_target[10:14, 70:74] = 1  # 16 foreground pixels out of 10800
    small_target = (small[0] > 0.5).astype(np.uint8)
    return [big, small], [big_target, small_target]


def test_patches_have_the_requested_sizes_and_dtypes():
    images, targets = _images()
    dataset = PatchDataset(images, targets, (44, 44), (4, 4), samples_per_epoch=10)
    item = dataset[3]
    assert item["image"].shape == (1, 44, 44) and item["target"].shape == (4, 4)
    assert item["image"].dtype.is_floating_point and item["target"].dtype.is_signed


def test_foreground_oversampling_finds_rare_objects():
    images, targets = _images()
    images, targets = images[:1], targets[:1]
    always = PatchDataset(images, targets, (16, 16), (16, 16), 200, foreground_fraction=1.0)
    never = PatchDataset(images, targets, (16, 16), (16, 16), 200, foreground_fraction=0.0)
    hit_always = np.mean([always[i]["target"].sum().item() > 0 for i in range(200)])
    hit_never = np.mean([never[i]["target"].sum().item() > 0 for i in range(200)])
    assert hit_always == 1.0  # the jitter is at most a quarter patch: the object stays inside
    assert hit_never < 0.2


def test_deterministic_per_epoch_and_different_across_epochs():
    images, targets = _images()
    dataset = PatchDataset(images, targets, (32, 32), (32, 32), 5, seed=7)
    first = dataset[2]["image"].clone()
    assert (dataset[2]["image"] == first).all()
    dataset.set_epoch(1)
    assert not (dataset[2]["image"] == first).all()


def test_small_images_are_mirrored_not_zero_padded():
    image = np.arange(12, dtype=np.float32).reshape(1, 3, 4) + 1  # no zeros anywhere
    dataset = PatchDataset([image], [np.ones((3, 4), np.uint8)], (16, 16), (16, 16), 4, foreground_fraction=0.0)
    patch = dataset[0]["image"].numpy()
    assert patch.min() >= 1 and set(np.unique(patch)) <= set(range(1, 13))


def test_transform_runs_on_input_sized_arrays_then_targets_are_cropped():
    images, targets = _images()
    seen = {}

    def spy(sample, rng):
        seen.update({key: value.shape for key, value in sample.items()})
        return sample

    weights = [np.ones(t.shape, np.float32) for t in targets]
    dataset = PatchDataset(images, targets, (44, 44), (4, 4), 3, weights=weights, transform=spy)
    item = dataset[0]
    assert seen == {"image": (1, 44, 44), "target": (44, 44), "weights": (44, 44)}
    assert item["weights"].shape == (4, 4)
    assert centre_crop(np.arange(25).reshape(5, 5), (1, 1)).item() == 12


def test_balanced_classes_centre_rare_classes_as_often_as_common_ones():
    target = np.zeros((200, 200), np.uint8)
    target[:, :100] = 1  # common: half the image
    target[150:153, 150:153] = 2  # rare: 9 pixels
    target[0:50, 150:200] = 255  # ignored: never a class to balance
    image = np.random.default_rng(1).random((1, 200, 200)).astype(np.float32)
    plain = PatchDataset([image], [target], (8, 8), (8, 8), 300, foreground_fraction=1.0, ignore_label=255)
    balanced = PatchDataset([image], [target], (8, 8), (8, 8), 300, foreground_fraction=1.0, ignore_label=255,
                            balance_classes=True)
    assert sorted(balanced.class_points) == [1, 2]

    def rare_share(dataset):
        return np.mean([(dataset[i]["target"] == 2).any().item() for i in range(300)])

    assert rare_share(plain) < 0.05  # 9 of ~10,000 centre candidates
    assert 0.4 < rare_share(balanced) < 0.6  # half of the centres: one of two classes
    assert (balanced[0]["image"] == balanced[0]["image"]).all()  # deterministic
