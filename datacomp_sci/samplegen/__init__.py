"""Deterministic generators for the bundled sample corpus and the benchmark corpus.

The bundled sample packages (``datacomp_sci/resources/samples``) are written by
``python -m datacomp_sci.samplegen OUTDIR``; every package comes with the exact pairs an
extractor must find (``expected.json``). Nothing here is copied from a real paper.
"""
