"""The reproducible benchmark suite: ``python benchmarks/run.py`` (see benchmarks/README.md).

``zoo`` says what is built and with which budget, ``build`` trains, prunes and exports one
variant, ``monai_reference`` builds MONAI's BasicUNet the same way, ``summary`` turns the bench
rows into the per-variant table, and ``run`` ties them together.
"""
