"""Room ``report``: reports from results (HTML/Markdown, figures as PNG/PDF/SVG, tables as
LaTeX/CSV) and summaries.

Also the human description of a bundle (``info``). matplotlib is imported only where
plots are drawn; energy models' and links' labels come from ``measure``.
"""
