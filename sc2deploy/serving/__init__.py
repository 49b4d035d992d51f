"""Room ``serving``: ``sc2deploy serve``, the edge server of the split pipeline.

::

    device (sc2deploy stream) ── POST /v1/infer, bearer token, request id, container ──▶
        Ray Serve proxy ─ SplitServer replica: auth ─ size ─ bundle/prior digest ─ decode
        ─ @serve.batch ─ tail.onnx (or decoder.onnx, or decoding alone) ─ top-k + timings

``service`` holds the engine-free logic (validation, decoding, tasks, the replay cache),
``batching`` how a batch runs through each model (at once or image by image, measured),
``auth`` the token, ``ray_app`` the Ray Serve deployment. The wire protocol, shared with
the device (:mod:`sc2deploy.stream`), is :mod:`sc2deploy.wire` (docs/serving.md, Protocol).
"""
