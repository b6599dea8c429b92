-- pg_trgm serves case-insensitive substring search (`q`) with GIN indexes. Trusted on PostgreSQL
-- >= 13; PGlite loads it as a contrib extension.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
