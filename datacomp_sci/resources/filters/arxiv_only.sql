-- arxiv_only: the paper's arXiv subset (all pairs extracted from arXiv LaTeX sources).
-- Parameters: none.
SELECT uid FROM pools WHERE source = 'arxiv'
