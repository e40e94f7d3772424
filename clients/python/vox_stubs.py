"""Imports the generated vox.v1 gRPC stubs for the example clients.

The stubs are generated at build time (target vox_python_stubs, into BUILD/clients/python/gen).
"""

import importlib
import os
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


def add_connection_args(parser):
    """Adds the connection flags every example client takes: TLS, mutual TLS, a bearer token."""
    parser.add_argument("--tls", action="store_true", help="connect with TLS (system roots)")
    parser.add_argument("--tls-ca", default="", help="PEM roots to trust (implies --tls)")
    parser.add_argument("--tls-cert", default="", help="client certificate, for mutual TLS")
    parser.add_argument("--tls-key", default="", help="its private key")
    parser.add_argument("--token-file", default="",
                        help="file holding the bearer token (else $VOX_TOKEN); needs TLS")


def security_from_args(args):
    """The `security` dict open_channel takes, from add_connection_args' flags."""
    token = os.environ.get("VOX_TOKEN", "").strip()
    if args.token_file:
        with open(args.token_file) as f:
            token = f.read().strip()
    return {"tls": args.tls, "ca": args.tls_ca, "cert": args.tls_cert, "key": args.tls_key,
            "token": token}


def open_channel(server, security=None):
    """A gRPC channel to voxd: plaintext, or TLS when `security` (see security_from_args) asks
    for it, with its client certificate and bearer token."""
    import grpc
    s = security or {}
    if not (s.get("tls") or s.get("ca") or s.get("cert")):
        if s.get("token"):
            raise ValueError("a bearer token needs TLS: add --tls or --tls-ca FILE")
        return grpc.insecure_channel(server)

    def read(path):
        if not path:
            return None
        with open(path, "rb") as f:
            return f.read()

    credentials = grpc.ssl_channel_credentials(read(s.get("ca")), read(s.get("key")),
                                               read(s.get("cert")))
    if s.get("token"):
        credentials = grpc.composite_channel_credentials(
            credentials, grpc.access_token_call_credentials(s["token"]))
    return grpc.secure_channel(server, credentials)
