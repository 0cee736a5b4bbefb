-- source: samples whose `source` column is one of a comma-separated list.
-- datacomp-sci pools have source 'arxiv' or 'pmc'; CommonPool rows have no source
-- (NULL) and are dropped.
-- @param sources = arxiv,pmc   comma-separated sources to keep
SELECT uid FROM pools
WHERE list_contains(string_split(getvariable('sources'), ','), source)
