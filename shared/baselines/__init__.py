"""Conventional (non-semantic) baseline systems, on the same channel and budget as the semantic link.

- :mod:`.jpeg_scan`: JPEG source coding that sends only the entropy-coded scan.
- :mod:`.qc_ldpc`: IEEE 802.16e QC-LDPC codes, encoding, BP decoding (the ``ldpc`` package).
- :mod:`.modulation`: Gray QAM as PAM per real symbol, exact bit LLRs.
- :mod:`.digital_link`: modes, frame plans, the coded-modulation sender and receiver.
- :mod:`.link_adaptation`: the measured mode thresholds and the adaptive policy.
- :mod:`.jpeg_ldpc`: the ``jpeg-ldpc`` system and its failure rule.

See ``docs/baselines.md``.
"""
