"""LightningDataModules. Each exposes `input_shape` and `num_classes` once constructed or set up."""
