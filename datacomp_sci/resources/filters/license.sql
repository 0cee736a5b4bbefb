-- license: samples whose licence matches a regular expression (RE2 syntax, searched
-- anywhere in the `license` column, case-insensitive). The default keeps the Creative
-- Commons Attribution family (CC BY, BY-SA, BY-NC, BY-NC-SA, BY-ND, BY-NC-ND) and CC0.
-- Rows without a licence (NULL; CommonPool, most arXiv papers) are dropped.
-- Example, CC BY and CC0 only:  --param 'pattern=licenses/by/|publicdomain/zero'
-- @param pattern = creativecommons\.org/(licenses/by|publicdomain/zero)   licence regex
SELECT uid FROM pools
WHERE regexp_matches(license, getvariable('pattern'), 'i')
