-- no_filter: every sample of every given pool (DataComp's no_filter baseline).
-- Parameters: none.
SELECT uid FROM pools
