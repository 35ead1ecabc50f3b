"""Tests of tomochunk.inference."""
