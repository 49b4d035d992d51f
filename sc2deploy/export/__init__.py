"""Room ``export`` (host side, torch): checkpoint -> verified bundle.

The gate's agreement metric comes from ``targets``. Importing the package or its
``options`` does not import torch: ``export_bundle`` is loaded when first used.
"""

from sc2deploy.export.options import ExportOptions

__all__ = ["ExportOptions", "export_bundle"]


def __getattr__(name):
    if name == "export_bundle":
        from sc2deploy.export.pipeline import export_bundle

        return export_bundle
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
