"""Tests of tomochunk.pipeline."""
