"""sc2deploy: deploy the heads of split-computing models to edge devices.

Rooms, each importing only the ones below it (tests/test_rooms.py enforces it)::

    cli
    orchestrate   remote (ssh), emulation + arm_check (qemu-user), sweep, demo, containers
    builders      bundle -> artifacts, gated (host; TensorRT engines on the Jetson)
    export        checkpoint -> bundle (host, torch)
    report        tables, plots, documents, bundle description
    measure       device runtime, sampler, sensors, energy models, links, server timing
    results       results schema and files
    targets       target records, runners, the fidelity gate, image -> container
    codec         range coding
    core          errors, log, atomic, bundle, prior, images, preprocess, specs, config_files,
                  machine

The device rooms (core, codec, targets, results, measure) never import torch,
onnx or matplotlib.
"""

__version__ = "0.1.0"

from sc2deploy.errors import Sc2DeployError

__all__ = ["Sc2DeployError", "__version__"]
