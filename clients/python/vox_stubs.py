"""Imports the generated vox.v1 gRPC stubs for the example clients.

The stubs are generated at build time (target vox_python_stubs, into BUILD/clients/python/gen).
"""

import importlib
import sys


def load_stubs(stubs_dir, program, *modules):
    """The modules `vox.v1.<name>` for each name in `modules`, with `stubs_dir` (if any) on the
    path; exits with a message naming `program` when they cannot be imported."""
    if stubs_dir:
        sys.path.insert(0, stubs_dir)
    try:
        import grpc  # noqa: F401
        return tuple(importlib.import_module("vox.v1." + m) for m in modules)
    except ImportError as e:
        sys.exit("%s: cannot import the generated stubs (%s); build the vox_python_stubs target "
                 "and pass --stubs BUILD/clients/python/gen" % (program, e))
