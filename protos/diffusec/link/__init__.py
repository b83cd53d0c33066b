"""Python package of ``diffusec.link``."""
