"""On-device latency and energy profiling (torch-free). Not implemented yet: see the profiling issue."""
