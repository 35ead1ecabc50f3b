"""Tests of tomochunk.config."""
