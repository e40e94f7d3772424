"""Shared set-up for the NLLB tool tests: one tiny checkpoint (and its SentencePiece model) per
test process, made in a temporary directory by tools/tiny_nllb.py."""
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.normpath(os.path.join(HERE, "..", "..", "tools"))
sys.path.insert(0, TOOLS)

import torch  # noqa: E402

import tiny_nllb  # noqa: E402

torch.set_num_threads(1)

_STATE = {}


def workdir() -> str:
    if "dir" not in _STATE:
        _STATE["dir"] = tempfile.mkdtemp(prefix="vox_nllb_test_")
    return _STATE["dir"]


def cleanup() -> None:
    if "dir" in _STATE:
        shutil.rmtree(_STATE.pop("dir"), ignore_errors=True)


def base_checkpoint() -> str:
    """A tiny checkpoint (pytorch_model.bin) made once per process."""
    if "ckpt" not in _STATE:
        ckpt = os.path.join(workdir(), "base")
        tiny_nllb.write_checkpoint(ckpt)
        _STATE["ckpt"] = ckpt
    return _STATE["ckpt"]


def variant(name: str, weights: str = "bin", state_dict=None, shards: int = 2) -> str:
    """A copy of the base checkpoint's tokenizer/config files with other weights."""
    base = base_checkpoint()
    dst = os.path.join(workdir(), name)
    if os.path.isdir(dst):
        shutil.rmtree(dst)
    os.makedirs(dst)
    for f in os.listdir(base):
        if f.endswith(".json") and "index" not in f or f.endswith(".model"):
            shutil.copyfile(os.path.join(base, f), os.path.join(dst, f))
    sd = state_dict if state_dict is not None else torch.load(os.path.join(base, "pytorch_model.bin"))
    tiny_nllb.write_weights(dst, sd, weights, shards)
    return dst
