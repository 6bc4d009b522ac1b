"""From per-frame CTC outputs to label sequences, and the metrics that score them."""
