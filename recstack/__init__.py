"""RecStack's lowest layer: the names every package shares and the one reader of the environment.

Nothing here imports another RecStack package, so ``assets``, ``resources``, ``serving`` and
``orchestration`` can all import it.
"""
