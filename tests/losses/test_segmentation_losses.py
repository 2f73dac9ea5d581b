"""Losses against hand-computed values."""

import math

import pytest
import torch
import torch.nn.functional as F

from unetkit.config import LossConfig
from unetkit.losses import SegmentationLoss, lovasz_softmax_loss, soft_dice_loss, weighted_cross_entropy
from unetkit.losses.segmentation import jaccard_gradient


def test_unweighted_matches_torch_cross_entropy():
    logits = torch.randn(2, 3, 5, 6)
    target = torch.randint(0, 3, (2, 5, 6))
    assert torch.allclose(weighted_cross_entropy(logits, target), F.cross_entropy(logits, target))


def test_pixel_weights_by_hand():
    # two pixels, logits (0, 0): each CE = ln 2; weights 1 and 10 -> mean over 2 pixels = 11 ln2 / 2
    logits = torch.zeros(1, 2, 1, 2)
    target = torch.tensor([[[0, 1]]])
    weights = torch.tensor([[[1.0, 10.0]]])
    assert weighted_cross_entropy(logits, target, weights).item() == pytest.approx(11 * math.log(2) / 2)


def test_ignore_label_is_left_out():
    logits = torch.tensor([[[[5.0, 0.0]], [[0.0, 5.0]]]])  # pixel 0 predicts class 0, pixel 1 class 1
    target = torch.tensor([[[0, 255]]])
    expected = F.cross_entropy(logits[..., :1], target[..., :1])
    assert weighted_cross_entropy(logits, target, ignore_index=255).item() == pytest.approx(expected.item())


def test_dice_loss_perfect_and_wrong():
    target = torch.tensor([[[0, 1], [1, 0]]])
    perfect = F.one_hot(target, 2).movedim(-1, 1).float() * 100
    assert soft_dice_loss(perfect, target).item() < 1e-3
    wrong = F.one_hot(1 - target, 2).movedim(-1, 1).float() * 100
    # foreground dice = (0 + 1) / (2 + 2 + 1) with eps = 1 -> loss 0.8
    assert soft_dice_loss(wrong, target).item() == pytest.approx(0.8, abs=1e-3)


def test_combined_loss_uses_config_weights():
    logits = torch.randn(1, 2, 4, 4, requires_grad=True)
    target = torch.randint(0, 2, (1, 4, 4))
    ce_only = SegmentationLoss(LossConfig(ce_weight=1.0, dice_weight=0.0))(logits, target)
    both = SegmentationLoss(LossConfig(ce_weight=1.0, dice_weight=2.0))(logits, target)
    assert both.item() == pytest.approx(ce_only.item() + 2 * soft_dice_loss(logits, target).item(), rel=1e-5)
    both.backward()
    assert logits.grad is not None


def test_jaccard_gradient_by_hand():
    assert jaccard_gradient(torch.tensor([1.0, 1.0])).tolist() == pytest.approx([0.5, 0.5])
    assert jaccard_gradient(torch.tensor([1.0, 0.0])).tolist() == pytest.approx([1.0, 0.0])
    # truth [1, 0, 1, 0]: Jaccard losses 1/2, 2/3, 1, 1 -> steps 1/2, 1/6, 1/3, 0
    assert jaccard_gradient(torch.tensor([1.0, 0.0, 1.0, 0.0])).tolist() == pytest.approx([0.5, 1 / 6, 1 / 3, 0.0])


def test_lovasz_is_one_minus_iou_for_sure_predictions():
    generator = torch.Generator().manual_seed(0)
    target = torch.randint(0, 3, (2, 9, 7), generator=generator)
    target[1][target[1] == 2] = 0  # class 2 absent from image 1: left out of its mean
    predicted = torch.randint(0, 3, (2, 9, 7), generator=generator)
    logits = F.one_hot(predicted, 3).movedim(-1, 1).float() * 200 - 100
    expected = []
    for image in range(2):
        for k in (1, 2):
            truth, guess = target[image] == k, predicted[image] == k
            if truth.any():
                expected.append(1 - (truth & guess).sum().item() / (truth | guess).sum().item())
    assert len(expected) == 3
    assert lovasz_softmax_loss(logits, target).item() == pytest.approx(sum(expected) / 3, abs=1e-6)


def test_lovasz_soft_case_by_hand_and_ignored_pixels():
    # truth 1, 1, 0, 0 and foreground probabilities 0.5, 1, 0.5, 0: errors 0.5, 0, 0.5, 0; sorted, the
    # steps of the Jaccard loss are 1/2, 1/6 (or 1/3, 1/3: ties), so the loss is 1/3 either way
    logits = torch.tensor([[[[0.0, 0.0, 0.0, 0.0, 0.0]], [[0.0, 100.0, 0.0, -100.0, 100.0]]]])
    target = torch.tensor([[[1, 1, 0, 0, 255]]])  # the last pixel (predicted foreground) is ignored
    assert lovasz_softmax_loss(logits, target).item() == pytest.approx(1 / 3, abs=1e-6)


def test_lovasz_without_foreground_is_zero_with_a_gradient_and_counts_in_the_module():
    logits = torch.randn(2, 2, 3, 4, 5, requires_grad=True)  # 3D
    assert lovasz_softmax_loss(logits, torch.zeros(2, 3, 4, 5, dtype=torch.long)).item() == 0.0
    target = torch.randint(0, 2, (2, 3, 4, 5))
    config = LossConfig(ce_weight=0.0, dice_weight=0.0, lovasz_weight=2.0)
    loss = SegmentationLoss(config)(logits, target)
    assert loss.item() == pytest.approx(2 * lovasz_softmax_loss(logits, target).item(), rel=1e-6)
    loss.backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
