"""Tests of the command-line interface, tomochunk.cli."""
