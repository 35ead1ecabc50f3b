"""Tests of the documentation: the README and docs/ against the code."""
