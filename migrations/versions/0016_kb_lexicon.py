"""Word statistics of each tenant's knowledge base, for the hybrid search's BM25 word score.

`ts_rank` knows how often a word occurs in a passage but not how rare it is in the
knowledge base, so "flow" counted like "hypersonic". BM25 needs, per tenant, how many
passages hold each lexeme (`kb_lexemes`) and how many passages there are with their summed
lengths (`kb_lexicon`; a passage's length is its number of distinct lexemes). Triggers on
kb_chunks keep both exact in the same transaction as the chunks themselves (inserts,
deletes, and deletes cascading from kb_documents); chunk text is never updated in place
(a new version deletes and inserts). A per-tenant advisory lock
orders concurrent writers of one tenant, so two ingests cannot deadlock on shared lexemes.

Revision ID: 0016
Revises: 0014
Create Date: 2026-11-26
"""
from alembic import op

revision = "0016"
down_revision = "0014"
branch_labels = None
depends_on = None

_COUNT = """
    PERFORM pg_advisory_xact_lock(hashtext('kb_lexicon'), hashtext(t))
       FROM (SELECT DISTINCT tenant AS t FROM {rows} ORDER BY 1) x;
    INSERT INTO kb_lexemes AS l (tenant, lexeme, chunks)
         SELECT r.tenant, u.lexeme, {sign} count(*) FROM {rows} r, unnest(r.tsv) u GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (tenant, lexeme) DO UPDATE SET chunks = l.chunks + EXCLUDED.chunks;
    INSERT INTO kb_lexicon AS s (tenant, chunks, words)
         SELECT r.tenant, {sign} count(*),
                {sign} coalesce(sum(length(r.tsv)), 0)
           FROM {rows} r GROUP BY 1 ORDER BY 1
    ON CONFLICT (tenant) DO UPDATE SET chunks = s.chunks + EXCLUDED.chunks, words = s.words + EXCLUDED.words;
"""


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE kb_lexemes (
            tenant  varchar(200) NOT NULL,
            lexeme  text NOT NULL,
            chunks  integer NOT NULL,
            PRIMARY KEY (tenant, lexeme)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE kb_lexicon (
            tenant  varchar(200) PRIMARY KEY,
            chunks  bigint NOT NULL,
            words   bigint NOT NULL
        )
        """
    )
    op.execute(
        f"""
        CREATE FUNCTION kb_lexicon_added() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            {_COUNT.format(rows="added", sign="")}
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        f"""
        CREATE FUNCTION kb_lexicon_removed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            {_COUNT.format(rows="removed", sign="-")}
            DELETE FROM kb_lexemes l USING (SELECT DISTINCT tenant FROM removed) r
             WHERE l.tenant = r.tenant AND l.chunks <= 0;
            DELETE FROM kb_lexicon s USING (SELECT DISTINCT tenant FROM removed) r
             WHERE s.tenant = r.tenant AND s.chunks <= 0;
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER kb_chunks_lexicon_added AFTER INSERT ON kb_chunks REFERENCING NEW TABLE AS added "
        "FOR EACH STATEMENT EXECUTE FUNCTION kb_lexicon_added()"
    )
    op.execute(
        "CREATE TRIGGER kb_chunks_lexicon_removed AFTER DELETE ON kb_chunks REFERENCING OLD TABLE AS removed "
        "FOR EACH STATEMENT EXECUTE FUNCTION kb_lexicon_removed()"
    )
    # the knowledge bases already there
    op.execute(
        """
        INSERT INTO kb_lexemes (tenant, lexeme, chunks)
             SELECT c.tenant, u.lexeme, count(*) FROM kb_chunks c, unnest(c.tsv) u GROUP BY 1, 2
        """
    )
    op.execute(
        """
        INSERT INTO kb_lexicon (tenant, chunks, words)
             SELECT c.tenant, count(*),
                    coalesce(sum(length(c.tsv)), 0)
               FROM kb_chunks c GROUP BY 1
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER kb_chunks_lexicon_removed ON kb_chunks")
    op.execute("DROP TRIGGER kb_chunks_lexicon_added ON kb_chunks")
    op.execute("DROP FUNCTION kb_lexicon_removed()")
    op.execute("DROP FUNCTION kb_lexicon_added()")
    op.execute("DROP TABLE kb_lexicon")
    op.execute("DROP TABLE kb_lexemes")
