"""Document retrieval for RAG: chunking, keyword scoring, vector and full-text search, MMR, reranking."""
