"""Random augmentation of the segmentation networks' training slices, made of MONAI transforms.

After nnU-Net's default augmentation, cut down to what fits slices that are already scaled to [-1, 1] inside the
brain (-1 outside): a random rotation and zoom of image and label together, a random contrast curve (gamma) per
channel, Gaussian noise and Gaussian blur. Brightness scaling is left out: every slice is rescaled to [-1, 1], so it
would show the network intensities that no test slice has.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from monai.data import get_track_meta, set_track_meta
from monai.transforms import RandAdjustContrast, RandAffined, RandGaussianNoise, RandGaussianSmooth

__all__ = ["SliceAugmentation"]


class SliceAugmentation:
    """Augments a batch of training slices, each slice with its own random draw; deterministic under ``seed``.

    Args:
        seed: seeds every draw (one random state shared by the transforms, so the sequence of batches repeats).
        spatial_prob: probability of the rotation and zoom of a slice.
        rotate: largest rotation in degrees (either way).
        zoom: largest relative change of scale (0.15: 0.85-1.15).
        contrast_prob: probability of the contrast curve, per channel.
        gamma: range of the contrast curve's exponent.
        noise_prob: probability of the Gaussian noise, per slice.
        noise_std: largest standard deviation of the Gaussian noise.
        blur_prob: probability of the Gaussian blur, per slice.
        blur_sigma: range of the Gaussian blur's sigma in pixels.
    """

    def __init__(
        self,
        seed: int = 0,
        spatial_prob: float = 0.5,
        rotate: float = 15.0,
        zoom: float = 0.15,
        contrast_prob: float = 0.3,
        gamma: tuple[float, float] = (0.7, 1.5),
        noise_prob: float = 0.15,
        noise_std: float = 0.05,
        blur_prob: float = 0.1,
        blur_sigma: tuple[float, float] = (0.5, 1.0),
    ) -> None:
        self.spatial = RandAffined(
            keys=("image", "label"),
            prob=spatial_prob,
            rotate_range=math.radians(rotate),
            scale_range=(zoom, zoom),
            mode=("bilinear", "nearest"),
            padding_mode="border",
        )
        self.contrast = RandAdjustContrast(prob=contrast_prob, gamma=gamma)
        self.noise = RandGaussianNoise(prob=noise_prob, std=noise_std)
        self.blur = RandGaussianSmooth(sigma_x=blur_sigma, sigma_y=blur_sigma, prob=blur_prob)
        state = np.random.RandomState(seed)
        for transform in (self.spatial, self.contrast, self.noise, self.blur):
            transform.set_random_state(state=state)

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Augmented copies of ``images`` ``(N, C, H, W)`` and their ``labels`` ``(N, 1, H, W)`` (class indices)."""
        track_meta = get_track_meta()
        set_track_meta(False)  # plain tensors in and out: the slices carry no metadata, and it halves the cost
        try:
            out_images, out_labels = [], []
            for image, label in zip(images, labels):
                moved = self.spatial({"image": image, "label": label.float()})
                image = torch.cat([self.contrast(channel[None]) for channel in moved["image"]])
                out_images.append(self.blur(self.noise(image)).to(images.dtype))
                out_labels.append(moved["label"].round().to(labels.dtype))
        finally:
            set_track_meta(track_meta)
        return torch.stack(out_images), torch.stack(out_labels)
