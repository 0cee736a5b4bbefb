"""Stage 1b: pairs to a DataComp pool (img2dataset-layout shards and CommonPool-schema metadata), URL pools through img2dataset, and SQL over pools."""
