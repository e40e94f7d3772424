"""The compressed weight formats both exporters script into their models (tools/export_nllb.py,
tools/export_xtts.py; --weights int8 | bfloat16): a linear's weight stored [out, in] in int8
with a float32 scale per output row, or in bfloat16, run by vox::linear (engines/torch/ops,
loaded with tools/vox_ops.py); activations and biases stay float32 (docs/model-format.md,
"Weight formats")."""
from typing import Optional, Tuple

import torch
from torch import Tensor, nn

import vox_ops

COMPRESSED_WEIGHTS = ("int8", "bfloat16")


def check_export(weights: Optional[str], dtype: str) -> Optional[str]:
    """Why an export with `--weights weights --dtype dtype` (weights None: the checkpoint's, in
    dtype) cannot be made, or None; loads vox's operators, which every export scripts into its
    model (vox::linear: tools/torchscript_linear.py and the compressed modules below)."""
    if weights is not None and weights not in COMPRESSED_WEIGHTS:
        return f"unknown weights {weights!r}; allowed: {', '.join(COMPRESSED_WEIGHTS)}"
    if weights is not None and dtype != "float32":
        return f"--weights {weights} needs --dtype float32 (its activations are float32; got {dtype})"
    try:
        vox_ops.load()
    except vox_ops.OpsLibraryError as e:
        return f"--weights {weights}: {e}" if weights is not None else str(e)
    return None


def quantize_int8(w: Tensor) -> Tuple[Tensor, Tensor]:
    """Symmetric per-output-row int8: w ~= q * scale[:, None], q in [-127, 127]. q is contiguous
    whatever w's strides (vox::linear reads [out, in] rows in place)."""
    w = w.float().contiguous()
    scale = (w.abs().amax(dim=1) / 127).clamp(min=torch.finfo(torch.float32).tiny)
    return torch.round(w / scale.unsqueeze(1)).clamp(-127, 127).to(torch.int8), scale


class Int8Linear(nn.Module):
    """y = x @ weight^T + bias with weight [out, in] in int8 and a scale per output row; x is
    quantized per row to activation_bits (16, or 8 as CTranslate2 does: half the work for many
    rows on AMX, coarser steps) inside vox::linear."""

    def __init__(self, weight: Tensor, bias: Optional[Tensor], activation_bits: int = 16):
        super().__init__()
        q, scale = quantize_int8(weight)
        self.weight = nn.Parameter(q, requires_grad=False)
        self.scale = nn.Parameter(scale, requires_grad=False)
        self.bias = None if bias is None else nn.Parameter(bias.float(), requires_grad=False)
        self.activation_bits = activation_bits

    def forward(self, x: Tensor) -> Tensor:
        return torch.ops.vox.linear(x, self.weight, self.scale, self.bias, self.activation_bits)


class Bf16Linear(nn.Module):
    """y = x @ weight^T + bias with weight [out, in] in bfloat16."""

    def __init__(self, weight: Tensor, bias: Optional[Tensor]):
        super().__init__()
        self.weight = nn.Parameter(weight.to(torch.bfloat16).contiguous(), requires_grad=False)
        self.bias = None if bias is None else nn.Parameter(bias.float(), requires_grad=False)

    def forward(self, x: Tensor) -> Tensor:
        return torch.ops.vox.linear(x, self.weight, None, self.bias)


def compressed_linear(weights: str, weight: Tensor, bias: Optional[Tensor], activation_bits: int = 16) -> nn.Module:
    """The linear of format `weights` (one of COMPRESSED_WEIGHTS) over weight [out, in];
    activation_bits for int8 (Int8Linear)."""
    if weights == "int8":
        return Int8Linear(weight, bias, activation_bits)
    if weights == "bfloat16":
        return Bf16Linear(weight, bias)
    raise ValueError(f"unknown weights {weights!r}; allowed: {', '.join(COMPRESSED_WEIGHTS)}")
