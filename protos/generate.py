"""Regenerate the Python code of every ``.proto`` under ``protos/``: ``python -m protos.generate``.

protoc runs from the repository root with ``-I .``, so ``protos/diffusec/link/v1/link.proto``
generates ``protos/diffusec/link/v1/link_pb2.py`` (+ ``_grpc.py``, ``.pyi``) whose imports read
``from protos.diffusec.link.v1 import link_pb2``: importable as a normal package, no sys.path edits.
"""
from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PROTO_ROOT = REPO_ROOT / "protos"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def proto_files() -> list[Path]:
    """Every .proto under protos/, as paths relative to the repository root (sorted)."""
    return sorted(p.relative_to(REPO_ROOT) for p in PROTO_ROOT.rglob("*.proto"))


def generated_files(out_dir: Path) -> list[Path]:
    """The generated files of every .proto, under ``out_dir`` (the repository root or a copy)."""
    return [out_dir / proto.with_name(proto.stem + suffix)
            for proto in proto_files() for suffix in GENERATED_SUFFIXES]


def generate(out_dir: Path = REPO_ROOT) -> list[Path]:
    """Run grpc_tools.protoc on every .proto, writing under ``out_dir``; returns the files written."""
    from grpc_tools import protoc

    out_dir.mkdir(parents=True, exist_ok=True)
    protos = [str(p) for p in proto_files()]
    # grpc_tools' bundled well-known types (google/protobuf/*.proto) for any imports.
    include = Path(protoc.__file__).parent / "_proto"
    args = ["grpc_tools.protoc", "-I.", f"-I{include}", f"--python_out={out_dir}", f"--pyi_out={out_dir}",
            f"--grpc_python_out={out_dir}", *protos]
    import os

    cwd = os.getcwd()
    os.chdir(REPO_ROOT)  # protoc resolves "-I." and the .proto paths against the repository root
    try:
        code = protoc.main(args)
    finally:
        os.chdir(cwd)
    if code != 0:
        raise RuntimeError(f"grpc_tools.protoc failed (exit {code}) on {', '.join(protos)}")
    return generated_files(out_dir)


def main() -> None:
    for path in generate():
        print(path.relative_to(REPO_ROOT))


if __name__ == "__main__":
    sys.exit(main())
