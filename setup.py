"""Build hook for the portable C range coder; all metadata lives in setup.cfg.

The coder is plain C99 with no Python API: it is compiled with the platform's C
compiler into ``sc2deploy/codec/_rangecoder*.so`` and loaded with ctypes, so
one build serves every Python version and cross-compiles like any C library.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension(
    "sc2deploy.codec._rangecoder",
    sources=["sc2deploy/codec/rangecoder.c"],
    extra_compile_args=["-std=c99", "-O2", "-ffp-contract=off"],
)])
