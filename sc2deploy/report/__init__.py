"""Room ``report``: reports from results (HTML/Markdown, figures as PNG/PDF/SVG, tables as
LaTeX/CSV) and summaries.

Also the human description of a bundle (``info``). matplotlib is imported only where
plots are drawn. May import: core, ``results``, ``measure`` (labels of energy models
and links); never ``export``, ``builders`` or ``orchestrate``.
"""
