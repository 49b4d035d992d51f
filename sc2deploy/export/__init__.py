"""Room ``export`` (host side, torch): checkpoint -> verified bundle.

May import: core, ``targets`` (the gate's agreement metric).
"""

from sc2deploy.export.pipeline import ExportOptions, export_bundle

__all__ = ["ExportOptions", "export_bundle"]
