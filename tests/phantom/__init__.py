"""Tests of tomochunk.phantom."""
