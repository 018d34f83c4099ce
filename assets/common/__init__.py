"""Pure building blocks every stage shares (top-k, exclusion masks); the bottom layer of ``assets``."""
