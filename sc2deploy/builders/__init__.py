"""Room ``builders``: bundle → target artifacts, gated on fidelity (host side).

``build``/``verify`` rebuild the torch fp32 reference from the bundle and measure
each artifact against it; one builder module per runtime family. Builders import
torch, onnx and converters inside their functions (the torch head comes from ``export``).
``build-engine`` (TensorRT) runs on the Jetson.
"""
