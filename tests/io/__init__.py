"""Tests of tomochunk.io."""
