"""On-device profiling (torch-free).

So far: power sources (``power``: Jetson INA3221, Pi 5 PMIC, INA2xx, RAPL) read
from sysfs trees or commands. The profiler, sampler, link models and reports
are not written yet (see the profiling issue).
"""
