"""Data: the manifest dataset format, preparing real datasets, conditions, masks, and training examples."""
