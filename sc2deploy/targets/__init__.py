"""Per-target artifacts and runners (torch-free runners). Not implemented yet: see the targets issue."""
