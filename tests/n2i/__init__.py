"""Tests of tomochunk.n2i."""
