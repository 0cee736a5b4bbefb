"""Stage 3: subset files to training shards (DataComp's resharder semantics) and mixing proportions for OpenCLIP."""
