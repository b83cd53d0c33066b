"""``diffusec bench sync|snr|link``: sync latency against a bare gRPC baseline, SNR-estimate error,
and network vs in-process throughput. Each ``run_*`` function returns the JSON-ready dict its
command prints; benchmarks are not timed tests (the tests only check that they run)."""
