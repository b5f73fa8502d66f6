"""The shapes world: procedurally rendered scenes with exact ground truth, and the models trained on it."""
