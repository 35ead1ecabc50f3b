"""Tests of tomochunk.preprocess."""
