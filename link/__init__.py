"""Local bring-up, demo and benchmarks of the DiffuSeC link (``diffusec up|demo|bench|health``).

``link.procs`` runs child processes with prefixed logs and clean shutdown; ``link.stack`` starts
a receiver and a channel proxy on loopback ports; ``link.demo`` runs a scenario table through
them; ``link.bench`` measures sync latency, SNR-estimate error and throughput. Nothing here does
model math: that stays in ``shared``; the services stay in ``receiver``, ``channel_proxy``, ``sender``.
"""
