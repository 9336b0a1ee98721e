"""Retrieval quality on a BEIR dataset through the real ingest and retrieval code.

    python bench/retrieval_eval.py ../shared/eval/scifact [--max-queries N] [--max-documents N]

Ingests the corpus into one tenant (embedded engine, offline MiniLM embedder), then prints
nDCG@10 and recall@100 for alpha in {0, 0.3, 0.5, 0.7, 1.0}, with and without reranking.
Chunks are ranked by the same hybrid fusion the API uses and collapsed to documents
(first occurrence); recall@100 is over the documents of the first 100 chunks.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import MemoEmbedder, ingest_corpus, load_beir, platform

ALPHAS = (0.0, 0.3, 0.5, 0.7, 1.0)


def ndcg_at(ranked: list[str], relevant: dict[str, int], k: int = 10) -> float:
    dcg = sum((2 ** relevant.get(d, 0) - 1) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    idcg = sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at(ranked: list[str], relevant: dict[str, int], k: int = 100) -> float:
    wanted = {d for d, g in relevant.items() if g > 0}
    return len(wanted & set(ranked[:k])) / len(wanted) if wanted else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--max-queries", type=int, default=None, help="evaluate on the first N judged queries")
    parser.add_argument("--max-documents", type=int, default=None, help="ingest at most N documents (all judged ones first)")
    parser.add_argument("--rerank-queries", type=int, default=200, help="queries used for the reranking rows (it is slower)")
    args = parser.parse_args()

    from raas.adapters.rerankers import SentenceMaxSimReranker
    from raas.bootstrap import install, services
    from raas.services.query import Plan

    corpus = load_beir(args.dataset, args.max_documents)
    queries = list(corpus.queries.items())[: args.max_queries]
    print(f"dataset {args.dataset.name}: {len(corpus.documents)} documents, {len(queries)} judged queries", flush=True)
    with platform() as bench:
        embedder = MemoEmbedder(services().embedder)
        install(services().replaced(embedder=embedder))
        seconds, chunks = ingest_corpus(bench, corpus.documents)
        print(f"ingested {len(corpus.documents)} documents as {chunks} chunks in {seconds:.1f} s (the whole path)", flush=True)
        service = services().query_service
        reranker = SentenceMaxSimReranker(embedder)
        print(f"\n{'alpha':>5}  {'rerank':>6}  {'queries':>7}  {'nDCG@10':>8}  {'recall@100':>10}  {'ms/query':>8}")
        for rerank in (False, True):
            service.reranker = reranker if rerank else None
            subset = queries[: args.rerank_queries] if rerank else queries
            for alpha in ALPHAS:
                started = time.perf_counter()
                ndcg = recall = 0.0
                for query_id, text in subset:
                    hits = service.retrieve(bench.tenant_id, text, Plan(top_k=100, alpha=alpha, rerank=rerank, conditions=[], filters={}))
                    if rerank:  # the reranked head, then the rest of the fused list for recall
                        head = {h.chunk_id for h in hits}
                        hits = hits + [
                            h for h in service.retrieve(bench.tenant_id, text, Plan(100, alpha, False, [], {})) if h.chunk_id not in head
                        ]
                    ranked = list(dict.fromkeys(str(h.metadata["beir_id"]) for h in hits))
                    ndcg += ndcg_at(ranked, corpus.qrels[query_id])
                    recall += recall_at(ranked, corpus.qrels[query_id])
                elapsed = (time.perf_counter() - started) * 1000 / max(len(subset), 1)
                n = len(subset)
                print(f"{alpha:>5.1f}  {('yes' if rerank else 'no'):>6}  {n:>7}  {ndcg / n:>8.4f}  {recall / n:>10.4f}  {elapsed:>8.1f}")


if __name__ == "__main__":
    main()
