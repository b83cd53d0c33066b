"""``diffusec``: the project's command line, the top floor that calls everything below it.

- :mod:`.cli`: the root group and where each command is registered;
- :mod:`.train`: ``diffusec train PHASE`` (``train agent`` is :mod:`.agent`'s);
- :mod:`.evaluate`: ``diffusec eval``, one system in one process;
- :mod:`.attacks`, :mod:`.purification`, :mod:`.agent`: ``eval attacks``, ``eval purification``,
  ``train agent`` and ``eval adaptation``;
- :mod:`.report`: ``diffusec report``; :mod:`.data`: ``diffusec data``.

The link's commands (``up``, ``demo``, ``bench``, ``health``) live with the link in
:mod:`link.cli`; :mod:`.cli` registers them. Every command parses its options (the shared ones
from :mod:`shared.cli_options`), calls the library (:mod:`shared`) and prints. Nothing in
``shared`` imports this package.
"""
