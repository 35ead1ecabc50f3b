"""Tests of tomochunk.recon."""
