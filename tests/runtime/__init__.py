"""Tests of tomochunk.runtime."""
