"""Recipes shipped with hvl: package data (recipes/<domain>/<name>.yaml), listed and resolved by hvl.core.recipes."""
