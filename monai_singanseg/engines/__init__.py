"""Training, one folder per generator with the same file names.

- ``singanseg/`` and ``pix2pix/``: ``settings`` (the training settings), ``losses``, ``checkpoint`` (the model file as
  a checkpoint: a run's config, resume checks, the rewrite), ``trainer`` (the trainer and how it is built), plus what
  only that generator has (SinGAN-Seg: ``pyramid``, ``stacked``, ``scale_loop``, ``workflow``; pix2pix: ``data``,
  ``networks``, ``engine``).
- ``common``, ``handlers``, ``distributed``: what every trainer shares (data fingerprints, MONAI/ignite handlers,
  torchrun process groups).
"""

from __future__ import annotations
