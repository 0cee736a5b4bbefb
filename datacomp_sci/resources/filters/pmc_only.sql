-- pmc_only: the paper's PMC subset (all pairs from PubMed Central Open Access).
-- Parameters: none.
SELECT uid FROM pools WHERE source = 'pmc'
