"""Room ``orchestrate``: runs that combine the others — a real device over ssh (``ssh``:
``profile --host``, ``verify --host``), emulated ARM CPUs under qemu-user (``emulation``:
``verify --emulate``, ``build --search --emulate``, ``make arm-check``), what both record in
``fidelity_by_cpu``, the comparison of runs (``compare``), sweeps, the demo, and
encode/decode of container files.
"""
