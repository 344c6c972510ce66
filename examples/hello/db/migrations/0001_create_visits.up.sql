-- A table for the visits hello will count. cutover runs this file in stage 2
-- (continue), in one transaction with its bookkeeping row, before any
-- front-end swaps to the release that brings it.
CREATE TABLE visits (
    id         INTEGER PRIMARY KEY,
    path       TEXT NOT NULL,
    visited_at TEXT NOT NULL
);
CREATE INDEX visits_visited_at ON visits (visited_at);
