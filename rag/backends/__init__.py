"""Storage backends: the embedded index folder (`rag.index`) and PostgreSQL + pgvector."""
