"""Generated code of ``diffusec.link.v1`` (link.proto); regenerate with ``python -m protos.generate``."""
