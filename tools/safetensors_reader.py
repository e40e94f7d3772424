"""A small reader (and, for tests, writer) of the safetensors format, for machines without the
`safetensors` Python module (Debian 12 does not package it).

The format (https://github.com/huggingface/safetensors, "Format" section):

    bytes 0..8        N, an unsigned 64-bit little-endian integer: the header's length
    bytes 8..8+N      the header: UTF-8 JSON, an object
                        {"NAME": {"dtype": "F32", "shape": [2, 3], "data_offsets": [BEGIN, END]},
                         ..., "__metadata__": {"str": "str"}}   (metadata optional)
    bytes 8+N..       the data buffer; a tensor's bytes are buffer[BEGIN:END], row-major,
                      little-endian, no padding between tensors required

The reader checks what it can: the header length fits in the file, every entry has a known
dtype, END - BEGIN equals the element count times the element size, and offsets lie inside the
buffer. Each tensor is read into its own buffer (one copy in memory, no second one), so loading a
file costs its size in RAM once.

    tensors = load_file("model.safetensors")          # {name: torch.Tensor}, on the CPU
    names = read_header("model.safetensors")          # {name: {"dtype", "shape", ...}}
    save_file({"w": torch.zeros(2, 3)}, "out.safetensors")   # for tests
"""
import json
import os
import struct
from typing import Dict, Optional

import torch

# safetensors dtype name -> (torch dtype, element size in bytes)
DTYPES = {
    "F64": (torch.float64, 8),
    "F32": (torch.float32, 4),
    "F16": (torch.float16, 2),
    "BF16": (torch.bfloat16, 2),
    "I64": (torch.int64, 8),
    "I32": (torch.int32, 4),
    "I16": (torch.int16, 2),
    "I8": (torch.int8, 1),
    "U8": (torch.uint8, 1),
    "BOOL": (torch.bool, 1),
}
_NAME_OF = {dt: name for name, (dt, _) in DTYPES.items()}

# A header larger than this is not a safetensors file (the reference implementation's limit).
MAX_HEADER_BYTES = 100 * 1024 * 1024


class SafetensorsError(ValueError):
    """A malformed safetensors file; the message names the file and what is wrong."""


def read_header(path: str) -> Dict[str, dict]:
    """Returns the parsed header (without __metadata__), validated against the file's size."""
    header, _ = _read_header(path)
    return header


def _read_header(path: str):
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise SafetensorsError(f"{path}: {size} bytes, too short for a safetensors file")
        (n,) = struct.unpack("<Q", raw)
        if n > MAX_HEADER_BYTES or 8 + n > size:
            raise SafetensorsError(f"{path}: header length {n} does not fit in a file of {size} bytes")
        try:
            header = json.loads(f.read(n).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise SafetensorsError(f"{path}: header is not UTF-8 JSON: {e}") from None
    if not isinstance(header, dict):
        raise SafetensorsError(f"{path}: header is not a JSON object")
    header.pop("__metadata__", None)
    data_start = 8 + n
    data_len = size - data_start
    for name, info in header.items():
        try:
            dtype_name, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise SafetensorsError(f"{path}: tensor {name!r}: entry needs dtype, shape, data_offsets") from None
        if dtype_name not in DTYPES:
            raise SafetensorsError(f"{path}: tensor {name!r}: unknown dtype {dtype_name!r}; "
                                   f"known: {', '.join(DTYPES)}")
        numel = 1
        for d in shape:
            if not isinstance(d, int) or d < 0:
                raise SafetensorsError(f"{path}: tensor {name!r}: bad shape {shape}")
            numel *= d
        if not (0 <= begin <= end <= data_len) or end - begin != numel * DTYPES[dtype_name][1]:
            raise SafetensorsError(
                f"{path}: tensor {name!r}: data_offsets {[begin, end]} do not hold {dtype_name} "
                f"{shape} inside a data buffer of {data_len} bytes")
    return header, data_start


def load_file(path: str, names: Optional[list] = None) -> Dict[str, torch.Tensor]:
    """Reads every tensor (or only `names`) of a safetensors file into CPU tensors."""
    header, data_start = _read_header(path)
    out = {}
    with open(path, "rb") as f:
        for name in (names if names is not None else header.keys()):
            if name not in header:
                raise SafetensorsError(f"{path}: no tensor named {name!r}")
            info = header[name]
            dtype, _ = DTYPES[info["dtype"]]
            begin, end = info["data_offsets"]
            buf = bytearray(end - begin)
            f.seek(data_start + begin)
            if f.readinto(buf) != len(buf):
                raise SafetensorsError(f"{path}: tensor {name!r}: file ends inside its data")
            if len(buf) == 0:
                t = torch.empty(info["shape"], dtype=dtype)
            else:
                # frombuffer shares buf's memory: the tensor keeps it alive, nothing is copied.
                t = torch.frombuffer(buf, dtype=dtype).reshape(info["shape"])
            out[name] = t
    return out


def save_file(tensors: Dict[str, torch.Tensor], path: str, metadata: Optional[Dict[str, str]] = None) -> None:
    """Writes tensors in the safetensors format (sorted by name, 8-byte aligned header)."""
    header = {}
    offset = 0
    blobs = []
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        if t.dtype not in _NAME_OF:
            raise SafetensorsError(f"{path}: tensor {name!r}: dtype {t.dtype} has no safetensors name")
        # bytes of any dtype (bfloat16 included) through a uint8 view of the storage
        data = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": _NAME_OF[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    if metadata:
        header["__metadata__"] = metadata
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * ((8 - len(raw) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for b in blobs:
            f.write(b)
