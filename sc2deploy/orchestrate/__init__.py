"""Room ``orchestrate``: runs that combine the others — remote profiling over ssh,
emulated ARM CPUs under qemu-user (``emulation``, ``arm_check``, ``compare``), sweeps,
the demo, and encode/decode of container files.

May import every room below it (core, ``codec``, ``targets``, ``results``, ``measure``,
``report``, ``export``, ``builders``); only ``cli`` imports it.
"""
