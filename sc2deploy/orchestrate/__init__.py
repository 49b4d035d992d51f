"""Room ``orchestrate``: runs that combine the others — remote profiling over ssh,
emulated ARM CPUs under qemu-user, sweeps and the demo.

May import every room below it (core, ``codec``, ``targets``, ``results``, ``measure``,
``report``, ``export``, ``builders``); only ``cli`` imports it.
"""
