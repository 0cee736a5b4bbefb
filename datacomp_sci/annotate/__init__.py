"""Model-derived metadata: CLIP embeddings and scores (:mod:`.embed`), the copy-detection
descriptor used for decontamination (:mod:`.isc`), and img2dataset-compatible face
blurring (:mod:`.blur`)."""
