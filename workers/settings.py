"""One settings object, read from the environment (and `.env`) when a process starts."""
from __future__ import annotations

from pathlib import Path

from limits import parse_many
from pydantic import Field, NonNegativeInt, PositiveFloat, PositiveInt, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from workers.chat_models import is_chat_model
from workers.password_hash import weaker_than_default, work_factor
from workers.pricing import parse_prices

INSTANCE_DIR = Path.cwd() / "instance"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    # Unset means the embedded defaults: SQLite in instance/ and an in-process fakeredis.
    database_url: str | None = None
    redis_url: str | None = None
    secret_key: str = Field(default="", repr=False)
    production: bool = False

    openai_api_key: str | None = Field(default=None, repr=False)
    openai_base_url: str | None = None
    default_ai_model: str = "gpt-3.5-turbo"
    model_aliases: str = ""  # "fast=gpt-4o-mini,smart=gpt-4": names users may pick, mapped upstream
    # "model=input/output,...": USD per 1K tokens, on top of workers.pricing.DEFAULT_PRICES
    model_prices: str = ""
    upstream_timeout_s: PositiveFloat = 60.0
    # The document's "direct OpenAI" fallback; the primary is its "LangChain service".
    fallback_openai_base_url: str | None = None
    fallback_openai_api_key: str | None = Field(default=None, repr=False)
    # Users' own base URLs may point at private, loopback and link-local addresses (see workers.addresses).
    allow_private_user_upstreams: bool = False
    breaker_failure_threshold: PositiveInt = 5
    breaker_timeout_s: PositiveInt = 60
    models_cache_s: PositiveInt = 300

    cors_origins: str = "*"
    access_token_minutes: PositiveInt = 60
    # werkzeug's method string: "scrypt" (n=32768, r=8, p=1), "scrypt:n:r:p" or "pbkdf2:sha256:iterations".
    # Production refuses a cheaper one than werkzeug's defaults; the tests use a cheap one.
    password_hash: str = "scrypt"
    refresh_token_days: PositiveInt = 30

    # Reply pipeline.
    reply_job_timeout_s: PositiveInt = 600
    reply_stream_maxlen: PositiveInt = 10_000
    reply_stream_ttl_s: PositiveInt = 3600
    # A reply's first token is published at once, then at most one chunk per window (0: every token alone).
    reply_chunk_window_ms: NonNegativeInt = 15
    worker_threads: PositiveInt = 100
    embedded_worker_threads: PositiveInt = 8
    ws_idle_timeout_s: PositiveFloat = 300.0
    ws_token_check_s: PositiveFloat = 5.0  # how soon an open socket notices its token was revoked (logout)
    # Client frames a socket may send a second; a resume counts as 10 (it may replay a whole stream)
    # unless refused for its cursor.
    ws_client_frames_per_s: int = Field(20, ge=10)
    ai_message_wait_s: PositiveFloat = 60.0
    sse_keepalive_s: PositiveFloat = 15.0  # a comment line on a silent SSE stream, so a gone client is noticed

    # Limits, per user, across every process and every API surface.
    rate_limit: str = "100/minute"
    max_concurrent_streams: PositiveInt = 10
    max_connections_per_user: PositiveInt = 50  # open chat WebSockets and event streams together
    redis_max_connections: PositiveInt = 400
    max_body_bytes: PositiveInt = 1024 * 1024  # a request body (JSON); the upload URLs take 10 MB files
    # Documents one user keeps, library documents (004) and session files (001) together.
    max_documents_per_user: PositiveInt = 500
    max_document_bytes_per_user: PositiveInt = 500 * 1024 * 1024

    # Retrieval-augmented chat (004). Vectors are stored with their model and dimension;
    # migration 0006 builds HNSW indexes for 64, 384 and 1536 dimensions (another needs a
    # migration adding its index, else search is exact).
    embedding_provider: str = "auto"  # auto | openai | local | none
    embedding_model: str = "text-embedding-3-small"
    embedding_dim: PositiveInt = 64
    rerank_url: str | None = None  # base URL of a server with the /v1/rerank form (vLLM, Infinity, TEI)
    rerank_model: str | None = None
    rerank_api_key: str | None = Field(default=None, repr=False)
    rag_chunk_tokens: PositiveInt = 200
    rag_chunk_overlap: NonNegativeInt = 40
    rag_pages_per_job: PositiveInt = 25  # a long PDF is indexed in slices so other uploads get between them

    # Uploaded documents: a PDF with more pages, or a parse taking longer, ends FAILED with the reason.
    max_pdf_pages: PositiveInt = 2000
    document_parse_timeout_s: PositiveInt = 120

    @field_validator("rate_limit")
    @classmethod
    def _rate_limit_parses(cls, value: str) -> str:
        parse_many(value)  # else every request is a 500 (or, empty, no limit at all)
        return value

    @field_validator("password_hash")
    @classmethod
    def _password_hash_works(cls, value: str) -> str:
        work_factor(value)
        return value

    @field_validator("model_prices")
    @classmethod
    def _prices_parse(cls, value: str) -> str:
        parse_prices(value)
        return value

    @field_validator("default_ai_model")
    @classmethod
    def _default_model_chats(cls, value: str) -> str:
        if not is_chat_model(value):  # else every reply fails upstream
            raise ValueError(f"'{value}' is not a chat model")
        return value

    @field_validator("model_aliases")
    @classmethod
    def _alias_targets_chat(cls, value: str) -> str:
        for alias, target in parse_aliases(value).items():
            if not is_chat_model(target):
                raise ValueError(f"alias '{alias}' names '{target}', which is not a chat model")
        return value

    def aliases(self) -> dict[str, str]:
        return parse_aliases(self.model_aliases)

    @property
    def embedded(self) -> bool:
        return not self.redis_url

    def resolved_database_url(self) -> str:
        if self.database_url:
            # Heroku-style URLs say postgres://; SQLAlchemy 2.1 maps a bare postgresql:// to
            # psycopg 3, while Parley ships psycopg2 (gevent-friendly through psycogreen).
            for bare in ("postgres://", "postgresql://"):
                if self.database_url.startswith(bare):
                    return "postgresql+psycopg2://" + self.database_url[len(bare):]
            return self.database_url
        INSTANCE_DIR.mkdir(exist_ok=True)
        return f"sqlite:///{INSTANCE_DIR / 'parley.db'}"

    def check(self) -> None:
        """Fail fast on settings that must not be missing in production."""
        if self.production and len((self.secret_key or "").strip()) < 32:  # spaces are no secret
            raise RuntimeError("SECRET_KEY must be set (32+ characters) when PRODUCTION=1")
        if self.production and (not self.database_url or not self.redis_url):
            raise RuntimeError("DATABASE_URL and REDIS_URL must be set when PRODUCTION=1")
        if self.production and weaker_than_default(self.password_hash):
            raise RuntimeError("PASSWORD_HASH must be at least as costly as werkzeug's default when PRODUCTION=1")


def parse_aliases(text: str) -> dict[str, str]:
    """Parse "alias=model,..."; entries without both names are skipped."""
    pairs = (item.split("=", 1) for item in text.split(",") if "=" in item)
    return {name.strip(): target.strip() for name, target in pairs if name.strip() and target.strip()}
