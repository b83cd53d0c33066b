"""Python package of the ``diffusec`` protobuf namespace."""
