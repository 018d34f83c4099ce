"""Run every benchmark; each writes ``benchmarks/results/<name>.json``."""

from benchmarks import window_engine

if __name__ == "__main__":
    window_engine.main([])
