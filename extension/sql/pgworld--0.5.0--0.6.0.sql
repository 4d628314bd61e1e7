-- pgworld 0.5.0 → 0.6.0 (ALTER EXTENSION pgworld UPDATE TO '0.6.0').
-- Released scripts are never edited; the upgrade test checks that 0.1.0 plus the upgrade scripts
-- give the same catalog as a fresh 0.6.0 install.
\echo Use "ALTER EXTENSION pgworld UPDATE TO '0.6.0'" to load this file. \quit

-- Per-pod limits: what a pod registers, and which pod a leased message went to.
ALTER TABLE handlers
    ADD COLUMN max_concurrency integer NOT NULL DEFAULT 32 CHECK (max_concurrency BETWEEN 1 AND 256);
ALTER TABLE messages ADD COLUMN lease_pod text;
