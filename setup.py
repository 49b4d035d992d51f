"""Build hook for the portable C range coder; all metadata lives in setup.cfg.

The coder is plain C99 with no Python API: it is compiled with the platform's C
compiler into ``sc2deploy/codec/_rangecoder*.so`` and loaded with ctypes, so
one build serves every Python version and cross-compiles like any C library.
``_rangecoder_py`` adds CPython entry points for the raw channel path (stable ABI,
Python 3.11+; a call costs about a microsecond, ctypes a few). It is optional:
where it does not build, or SC2DEPLOY_CTYPES_ONLY=1 (cross builds: the Python
headers at hand are the build machine's), sc2deploy uses ctypes.
"""

import os

from setuptools import Extension, setup

FLAGS = ["-std=c99", "-O2", "-ffp-contract=off"]
extensions = [Extension("sc2deploy.codec._rangecoder", sources=["sc2deploy/codec/rangecoder.c"],
                        extra_compile_args=FLAGS)]
if os.environ.get("SC2DEPLOY_CTYPES_ONLY") != "1":
    extensions.append(Extension(
        "sc2deploy.codec._rangecoder_py",
        sources=["sc2deploy/codec/rangecoder_module.c", "sc2deploy/codec/rangecoder.c"],
        extra_compile_args=FLAGS, py_limited_api=True, optional=True))
setup(ext_modules=extensions)
