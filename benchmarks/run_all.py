"""Run every benchmark; each writes ``benchmarks/results/<name>.json``."""

from benchmarks import (
    als_engines,
    entity_text,
    faiss_seed_scale,
    kb_hybrid,
    kb_pretrained,
    scale_als,
    serve_load,
    topk_kernels,
    window_engine,
)

if __name__ == "__main__":
    window_engine.main([])
    als_engines.main([])
    scale_als.main([])
    topk_kernels.main([])
    faiss_seed_scale.main([])
    serve_load.main([])
    kb_hybrid.main([])
    kb_pretrained.main([])
    entity_text.main([])
