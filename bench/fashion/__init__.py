"""The Fashion-MNIST case of the data-path benchmark: the real 10,000-image test set as PNGs."""
