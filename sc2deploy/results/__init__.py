"""Room ``results``: the profiling results schema, validation and files (torch-free).

One definition of the statistics keys and of the document header, written on the
device, read by reports.
"""

from sc2deploy.results.schema import load_results, validate, write_results

__all__ = ["load_results", "validate", "write_results"]
