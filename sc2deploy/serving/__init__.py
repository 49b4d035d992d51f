"""Room ``serving``: ``sc2deploy serve``, the edge server of the split pipeline.

::

    device (sc2deploy stream) ── POST /v1/infer, bearer token, request id, container ──▶
        Ray Serve proxy ─ SplitServer replica: auth ─ size ─ bundle/prior digest ─ decode
        ─ @serve.batch ─ tail.onnx (or decoder.onnx, or decoding alone) ─ top-k + timings

``service`` holds the engine-free logic (validation, decoding, tasks, the replay cache),
``batching`` how a batch runs through each model (at once or image by image, measured),
``auth`` the token, ``ray_app`` the Ray Serve deployment. The wire format is defined once
in :mod:`sc2deploy.measure.stream` (the device side) and documented in docs/serving.md.
May import: core, ``codec``, ``targets``, ``results``, ``measure``.
"""
