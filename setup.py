# All metadata lives in setup.cfg; this shim lets `pip install -e .` work with
# --no-build-isolation on older pips too.
from setuptools import setup

setup()
