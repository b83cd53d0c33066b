"""Conventional (non-semantic) baseline systems, on the same channel and budget as the semantic link.

- :mod:`.jpeg_scan`: JPEG source coding that sends only the entropy-coded scan.
- :mod:`.link_modes`: the modes, (QAM order, LDPC code rate).
- :mod:`.nr_link`: frame plans, the sender and receiver on Sionna's 5G NR blocks (CRC, LDPC, QAM).
- :mod:`.link_adaptation`: the measured mode thresholds and the adaptive policy.
- :mod:`.jpeg_ldpc`: the ``jpeg-ldpc`` system and its failure rule.

See ``docs/baselines.md``.
"""
