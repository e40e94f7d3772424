"""vox's own TorchScript operators (libvox_torch_ops.so, built with voxd) for Python: models
exported with int8 or bfloat16 weights call vox::linear, so the exporters, the references and
anything else that loads such a model.ts load the library first (docs/model-format.md,
"Weight formats").

    import vox_ops; vox_ops.load()

The library is the one the build made: $VOX_TORCH_OPS when set, else
<repo>/build/engines/torch/libvox_torch_ops.so. It must be built against the same LibTorch as
the torch this runs under (Debian's, for /usr/bin/python3).
"""
import os

import torch

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_loaded = []


class OpsLibraryError(Exception):
    pass


def library_path() -> str:
    return os.environ.get("VOX_TORCH_OPS") or os.path.join(_REPO, "build", "engines", "torch",
                                                           "libvox_torch_ops.so")


def load() -> str:
    """Loads the library once per process; returns its path. OpsLibraryError when missing."""
    path = library_path()
    if _loaded:
        return _loaded[0]
    if not os.path.isfile(path):
        raise OpsLibraryError(f"{path}: missing; build it first (cmake --build build --target "
                              f"vox_torch_ops) or set VOX_TORCH_OPS to its path")
    torch.ops.load_library(path)
    _loaded.append(path)
    return path
