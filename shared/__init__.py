"""DiffuSeC Link shared library: the math and models that sender, proxy and receiver share."""

__version__ = "0.1.0"
