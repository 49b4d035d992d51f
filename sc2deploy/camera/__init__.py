"""Frames from a camera, for ``sc2deploy stream`` (device side, torch-free).

``source``: the newest-frame capture thread and the sources (a V4L2 device by ioctl, or a
command writing MJPEG such as ``rpicam-vid`` or ``gst-launch-1.0 ... ! jpegenc ! fdsink``);
``v4l2``/``v4l2_abi``: the V4L2 device; ``jpeg``: MJPEG framing and decoding; ``pixels``:
raw V4L2 formats to RGB.
"""
