"""Tests of tomochunk.metrics."""
