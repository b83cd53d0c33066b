"""One module per impairment kind; each registers its class with ``@register``.

Every module in this folder is imported here, so a new kind's module is picked up without
editing any other file.
"""
import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
