-- btree_gist lets a GiST index or exclusion constraint combine equality on plain columns (org_id,
-- volunteer_id) with range overlap (period). It is a trusted extension on PostgreSQL >= 13, so a
-- database owner may create it; PGlite loads it as a contrib extension.
CREATE EXTENSION IF NOT EXISTS btree_gist;
