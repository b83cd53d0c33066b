"""The link's wire contract: ``.proto`` files, their generated Python code, and wire helpers.

``protos/diffusec/link/v1/link.proto`` (package ``diffusec.link.v1``) generates
``protos.diffusec.link.v1.link_pb2`` and ``link_pb2_grpc``. The generated files are committed;
``python -m protos.generate`` rewrites them, and ``tests/test_link_proto.py`` fails when they are
out of date. :mod:`protos.wire` is the byte format of symbols and images; :mod:`protos.serving`
starts a gRPC server (bind a port, health).
"""
