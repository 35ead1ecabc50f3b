"""Tests of tomochunk.nn."""
