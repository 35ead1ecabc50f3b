"""Tests of tomochunk.report."""
