"""Stage 1a: paper packages (arXiv LaTeX, PMC JATS) to figure-caption pairs, with images decoded and rasterised under bounds."""
