"""A seeded, learnable stand-in for CIFAR-10 of the same shape, for tests and demos.

Each class has a fixed random prototype image; a sample is its prototype plus Gaussian
noise, so a small network separates the classes within a few dozen steps.
"""

from __future__ import annotations

import numpy as np

from mcepl_dist.data.cifar10 import NUM_CLASSES, Split

NOISE_STD = 48.0


def _class_images(seed: int, label: int, count: int, split: int) -> np.ndarray:
    proto = np.random.default_rng([seed, label, 7]).integers(0, 256, (3, 32, 32))
    noise = np.random.default_rng([seed, label, split]).normal(0.0, NOISE_STD,
                                                               (count, 3, 32, 32))
    return np.clip(proto[None] + noise, 0, 255).astype(np.uint8)


def synthetic_labels(per_class: int) -> np.ndarray:
    """Labels of the synthetic split in dataset order (class-major)."""
    return np.repeat(np.arange(NUM_CLASSES, dtype=np.int64), per_class)


def synthetic_split(seed: int, per_class: int, train: bool, indices: np.ndarray) -> Split:
    """The rows `indices` of the synthetic split, generating only the classes they touch."""
    labels = synthetic_labels(per_class)[indices]
    images = np.empty((len(indices), 3, 32, 32), dtype=np.uint8)
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        block = _class_images(seed, int(label), per_class, 1 if train else 2)
        images[rows] = block[indices[rows] - label * per_class]
    return Split(images=images, labels=labels)
