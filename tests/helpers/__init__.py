"""What the tests share and that is not a test (imported as ``tests.helpers.NAME``; setup.cfg's
``pythonpath = .`` puts the repository root on the path, a child process gets it as PYTHONPATH):

    compressai_ref     CompressAI 1.2.8 as an independent reference, 1.1.9 in a subprocess
    reference_models   reference heads and students from CompressAI's modules; checkpoint writers
    results_factory    valid results documents (docs/results.md) built in the tests
    sensor_trees       fixture sysfs trees and command outputs of Jetson, Pi 5 and x86 sensors
    service_front      a real Service behind http.server on 127.0.0.1 (the `stream` tests' server)
    symbols            the tie rule of tests comparing two float paths by symbols or top-1
    netns              network namespaces of the tests' own (root; iproute2)
    mjpeg_camera       a stand-in camera command writing MJPEG to stdout (run as a script)
    vivid_vm           a VM whose kernel has a real V4L2 camera (vivid)
    blocked_imports    processes in which importing torch (or another package) fails
"""
