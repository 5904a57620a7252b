"""Video data: dataset readers, manifests, subsets, decoding, clip sampling and transforms."""
