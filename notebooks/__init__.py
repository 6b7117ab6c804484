"""Notebooks shipped with hvl: package data, copied out by `hvl notebook copy` (hvl.core.notebooks)."""
