"""Tests of tomochunk.filters."""
