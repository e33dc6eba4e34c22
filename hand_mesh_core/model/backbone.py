"""A small ResNet-style backbone (He et al., CVPR 2016), written here (no torchvision).

Image in, one global feature vector out: stem conv (stride 2), ``len(stage_widths)`` stages of
basic residual blocks (the first block of every stage after the first has stride 2), a 1x1
channel reduction and a linear layer over the FLATTENED map. Flattening (instead of global average
pooling) keeps where things are in the crop, which a (u, v) regressor needs.
"""
from __future__ import annotations

import torch
from torch import nn

from hand_mesh_core.model.config import NetworkConfig

__all__ = ["BasicBlock", "ResNetBackbone", "IMAGE_MEAN", "IMAGE_STD", "normalize_images"]

#: Input normalisation of images scaled to [0, 1]: centre on mid-grey, unit-ish spread. The
#: network is trained from scratch, so dataset statistics (e.g. ImageNet's) are not needed.
IMAGE_MEAN = 0.5
IMAGE_STD = 0.25


def normalize_images(images: torch.Tensor) -> torch.Tensor:
    """uint8 or [0, 1] float images (B, 3, H, W) -> normalised float (B, 3, H, W).

    Raises:
        ValueError: not (B, 3, H, W).
    """
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images must have shape (B, 3, H, W), got {tuple(images.shape)}")
    if images.dtype == torch.uint8:
        images = images.float() / 255.0
    return (images - IMAGE_MEAN) / IMAGE_STD


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and an identity (or 1x1 projected) shortcut."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False),
                                          nn.BatchNorm2d(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + self.shortcut(x))


class ResNetBackbone(nn.Module):
    """Images (B, 3, H, W) normalised -> features (B, feature_dim)."""

    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, config.stem_width, 3, 2, 1, bias=False),
            nn.BatchNorm2d(config.stem_width), nn.ReLU(inplace=True))
        layers = []
        in_ch = config.stem_width
        for i, width in enumerate(config.stage_widths):
            for j in range(config.blocks_per_stage):
                stride = 2 if (i > 0 and j == 0) else 1
                layers.append(BasicBlock(in_ch, width, stride))
                in_ch = width
        self.stages = nn.Sequential(*layers)
        side = config.input_size
        for _ in range(len(config.stage_widths)):  # the stem and every later stage halve
            side = (side + 1) // 2
        self.reduce = nn.Sequential(nn.Conv2d(in_ch, config.head_channels, 1, bias=False),
                                    nn.BatchNorm2d(config.head_channels), nn.ReLU(inplace=True))
        self.fc = nn.Linear(config.head_channels * side * side, config.feature_dim)
        self.out_dim = config.feature_dim
        self.input_size = config.input_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.input_size, self.input_size):
            raise ValueError(f"backbone input must be {self.input_size}x{self.input_size} px, "
                             f"got {tuple(x.shape[-2:])}")
        y = self.reduce(self.stages(self.stem(x)))
        return torch.relu(self.fc(y.flatten(1)))
