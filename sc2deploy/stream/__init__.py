"""Room ``stream``: ``sc2deploy stream``, the device end of the split pipeline (torch-free).

``client``: images or camera frames encoded, queued on disk and sent to ``sc2deploy serve``
(retries, request ids, the results document); ``adaptive``: per image the ladder point
that meets the deadline (``--ladder``); ``summary``: what the command prints about the
results. What the two ends say to each other is :mod:`sc2deploy.wire`.
"""
