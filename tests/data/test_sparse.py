"""Sparse annotation: unannotated voxels keep the ignore label through targets, patches and the loss."""

import numpy as np
import torch

from unetkit.config import LossConfig
from unetkit.data.sampling import PatchDataset
from unetkit.data.sparse import fill_unannotated, sparse_target
from unetkit.losses import SegmentationLoss
from unetkit.transforms import Compose, RandomElastic, RandomFlip, RandomRot90

IGNORE = 255


def test_unannotated_voxels_take_the_nearest_annotated_label():
    labels = np.array([[1, 0, 0, 0, 2]])
    unannotated = np.array([[False, True, True, True, False]])
    # distances from columns 1, 2, 3 to column 0 are 1, 2, 3 and to column 4 are 3, 2, 1: ties keep either
    filled = fill_unannotated(labels, unannotated)
    assert filled[0, 1] == 1 and filled[0, 3] == 2 and filled[0, 2] in (1, 2)
    assert np.array_equal(fill_unannotated(labels, np.ones_like(unannotated)), labels)


def test_a_nucleus_annotated_on_one_slice_keeps_its_interior():
    labels = np.zeros((9, 12, 12), np.int32)
    labels[:, 2:10, 2:10] = 1
    unannotated = np.ones(labels.shape, bool)
    unannotated[4] = False  # only slice 4 is annotated
    target, filled = sparse_target(labels, unannotated, "three-class", IGNORE, boundary_width=2)
    assert target.dtype == np.uint8
    assert np.all(target[unannotated] == IGNORE)
    # 8 x 8 square, boundary width 2: the centre 4 x 4 is interior, the outer two rings boundary
    assert (target[4] == 1).sum() == 16 and (target[4] == 2).sum() == 64 - 16
    assert np.all(filled[:, 5, 5] == 1)
    wide, _ = sparse_target(labels, unannotated, "binary", 300)
    assert wide.dtype == np.uint16 and wide[0, 0, 0] == 300 and wide[4, 5, 5] == 1


def test_patches_keep_the_ignore_label_and_centre_on_annotated_foreground():
    target = np.full((12, 32, 32), IGNORE, np.uint8)
    target[6] = 0
    target[6, 20:26, 20:26] = 1  # the only annotated object
    image = np.random.default_rng(0).random((1, 12, 32, 32)).astype(np.float32)
    transform = Compose([RandomElastic(3, sigma=2.0), RandomFlip(3), RandomRot90(3)])
    dataset = PatchDataset([image], [target], (8, 16, 16), (8, 16, 16), samples_per_epoch=12,
                           foreground_fraction=1.0, transform=transform, ignore_label=IGNORE)
    for i in range(len(dataset)):
        patch = dataset[i]["target"].numpy()
        assert set(np.unique(patch)) <= {0, 1, IGNORE}
        assert (patch == 1).any() and (patch == IGNORE).any()


def test_ignored_voxels_get_no_loss_gradient():
    logits = torch.randn(1, 3, 4, 6, 6, requires_grad=True)
    target = torch.full((1, 4, 6, 6), IGNORE, dtype=torch.long)
    target[0, 1, 2:4, 2:4] = 1
    target[0, 1, 0, :] = 0
    SegmentationLoss(LossConfig(), ignore_index=IGNORE)(logits, target).backward()
    grad = logits.grad.abs().sum(1)[0]
    assert torch.all(grad[target[0] == IGNORE] == 0) and torch.all(grad[target[0] != IGNORE] > 0)
