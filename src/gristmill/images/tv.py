"""Importing torchvision's transforms v2 where its compiled operators cannot load.

PyPI's Linux torchvision wheels link against CUDA torch libraries (``libc10_cuda.so``); beside the CPU
torch wheel (``torch==2.13.0+cpu``, what gristmill installs) their ``_C`` extension does not load, and
torchvision 0.28's ``_meta_registrations`` then registers fake kernels for ``torchvision::nms`` and
``::qnms`` without checking that the operators exist, so ``import torchvision`` raises. The transforms
need none of the compiled operators (detection ops: nms, roi_align, ...). :func:`transforms_v2`
imports torchvision normally and, only on that error, declares the schemas of those two operators (no
kernels: calling them still fails) and imports it again. With a matching torchvision build nothing is
declared.
"""

from __future__ import annotations

import sys
import warnings
from types import ModuleType
from typing import Any

__all__ = ["transforms_v2"]

_STUB: Any = None  # the torch.library.Library that holds the declared schemas (kept alive)


def _declare_missing_ops() -> None:
    global _STUB
    import torch

    if _STUB is None:
        _STUB = torch.library.Library("torchvision", "DEF")
        for op in ("nms", "qnms"):
            _STUB.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")


def transforms_v2() -> ModuleType:
    """``torchvision.transforms.v2.functional``, importable beside the CPU torch wheel."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Failed to load image Python extension" where _C does not load
        try:
            import torchvision  # noqa: F401
        except RuntimeError as exc:
            if "torchvision::" not in str(exc):
                raise
            for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
                del sys.modules[name]
            _declare_missing_ops()
            import torchvision  # noqa: F401,F811
        from torchvision.transforms.v2 import functional
    return functional
