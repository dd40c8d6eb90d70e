"""Data preparation, training and evaluation recipes."""
