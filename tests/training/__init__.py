"""Tests of tomochunk.training."""
