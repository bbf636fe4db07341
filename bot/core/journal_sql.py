"""The answer journal's statements (`bot.core.journal`), one per operation; each is a
single round trip, arrays passed with `unnest` so that a batch is one statement."""
from __future__ import annotations

from sqlalchemy import text

DEDUPE_AND_RECEIVED = text("""
WITH fresh AS (
    INSERT INTO processed_events (key) SELECT unnest(CAST(:keys AS varchar[]))
    ON CONFLICT DO NOTHING RETURNING key
), journaled AS (
    INSERT INTO answer_journal (key, platform, tenant, channel, action, incoming, owner, lease_until)
    SELECT j.key, j.platform, j.tenant, j.channel, j.action, CAST(j.incoming AS jsonb), :owner,
           now() + make_interval(secs => :lease)
    FROM unnest(CAST(:jkeys AS varchar[]), CAST(:jplatforms AS varchar[]), CAST(:jtenants AS varchar[]),
                CAST(:jchannels AS varchar[]), CAST(:jactions AS varchar[]), CAST(:jincoming AS text[]))
         AS j(key, platform, tenant, channel, action, incoming)
    JOIN fresh ON fresh.key = j.key
    ON CONFLICT (key) DO NOTHING
)
SELECT key FROM fresh
""")

ENSURE = text("""
INSERT INTO answer_journal (key, platform, tenant, channel, action, incoming, owner, lease_until)
VALUES (:key, :platform, :tenant, :channel, :action, CAST(:incoming AS jsonb), :owner,
        now() + make_interval(secs => :lease))
ON CONFLICT (key) DO UPDATE SET owner = EXCLUDED.owner, lease_until = EXCLUDED.lease_until,
    state = 'received', messages = '[]', native = false, updated_at = now()
WHERE answer_journal.owner = EXCLUDED.owner AND answer_journal.state IN ('received', 'answering')
RETURNING key
""")

UPDATE = text("""
UPDATE answer_journal AS j
SET state = u.state, messages = CAST(u.messages AS jsonb), native = u.native, updated_at = now()
FROM unnest(CAST(:keys AS varchar[]), CAST(:states AS varchar[]), CAST(:messages AS text[]),
            CAST(:natives AS boolean[])) AS u(key, state, messages, native)
WHERE j.key = u.key AND j.owner = :owner AND j.state IN ('received', 'answering')
""")

HEARTBEAT = text("""
UPDATE answer_journal SET lease_until = now() + make_interval(secs => :lease)
WHERE owner = :owner AND state IN ('received', 'answering')
""")

CLAIM = text("""
UPDATE answer_journal AS j
SET owner = :owner, lease_until = now() + make_interval(secs => :lease), attempts = j.attempts + 1,
    updated_at = now()
WHERE j.key IN (
    SELECT key FROM answer_journal
    WHERE state IN ('received', 'answering')
      AND (lease_until < now() OR owner = ANY(CAST(:dead AS varchar[])))
      AND platform = ANY(CAST(:platforms AS varchar[]))
    ORDER BY created_at LIMIT :limit
    FOR UPDATE SKIP LOCKED)
RETURNING j.key, j.platform, j.action, j.incoming, j.state, j.messages, j.native, j.attempts,
          extract(epoch FROM now() - j.created_at) AS age
""")

NEIGHBOURS = text("""
SELECT DISTINCT owner FROM answer_journal
WHERE state IN ('received', 'answering') AND lease_until >= now() AND owner LIKE :machine AND owner <> :owner
""")

NEXT_EXPIRY = text("""
SELECT extract(epoch FROM min(lease_until) - now()) FROM answer_journal
WHERE state IN ('received', 'answering') AND platform = ANY(CAST(:platforms AS varchar[]))
""")

PURGE = text("""
DELETE FROM answer_journal
WHERE state IN ('delivered', 'closed') AND created_at < now() - make_interval(secs => :keep)
""")
