"""Curation by the concepts captions name: MetaCLIP's metadata balancing and
knowledge-graph entity balancing (EntityNet), written as DataComp subset files."""
