"""The wheel's package list, found rather than written (everything else is in pyproject.toml).

Every folder with an ``__init__.py`` under core/ and domains/ becomes ``hvl.<folder path>`` (pyproject.toml's
package-dir maps hvl.core -> core/, hvl.domains -> domains/), so a new subpackage cannot be left out of the wheel
and no bare ``core`` is ever installed. setuptools' ``packages.find`` cannot add the ``hvl.`` prefix, hence this
file; tests/test_wheel.py checks the built wheel.
"""
from setuptools import find_packages, setup

CODE = ["core", "domains"]
DATA_PACKAGES = ["hvl.recipes", "hvl.notebooks"]  # folders of recipes and notebooks, shipped as package data

setup(packages=[f"hvl.{name}" for name in find_packages(include=[p for c in CODE for p in (c, f"{c}.*")])]
      + DATA_PACKAGES)
