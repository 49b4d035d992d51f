"""Room ``measure``: the device runtime and what it measures (torch-free, runs on the device).

Per-stage latency (``runtime``), per-op latency with the runtime's profiler (``per_op``), the
power sampler and sensors (``sampler``, ``power``), energy models, run conditions, statistics,
link models, the adaptive ladder policy and its modeled replay (``adaptive``, ``replay``),
JPEG/WebP input baselines, server-side timing and accuracy (``evaluate``). Sending to a
server is ``stream``'s.
"""
