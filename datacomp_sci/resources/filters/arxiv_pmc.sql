-- arxiv_pmc: the paper's scientific data, arXiv + PMC (no CommonPool rows).
-- Parameters: none.
SELECT uid FROM pools WHERE source IN ('arxiv', 'pmc')
