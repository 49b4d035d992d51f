"""Host side: checkpoint → verified bundle. The only part of sc2deploy that needs torch."""

from sc2deploy.export.pipeline import ExportOptions, export_bundle

__all__ = ["ExportOptions", "export_bundle"]
