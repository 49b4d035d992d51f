"""Emulated aarch64 CPUs under qemu-user: ``emulator`` sets up and runs the emulated Python,
``verify`` is ``verify --emulate``, ``search`` is ``build --search --emulate``, ``arm_check``
is ``make arm-check`` (``python -m sc2deploy.orchestrate.emulation.arm_check``).
"""
