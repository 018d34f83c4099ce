"""RecStack assets: one package per pipeline stage.

Each stage keeps its pure logic in plain modules (arrays and DataFrames in, arrays and DataFrames
out) and its Dagster ``@asset`` wrappers in ``assets.py`` beside them, so every algorithm can be
unit-tested without a Dagster instance.
"""
