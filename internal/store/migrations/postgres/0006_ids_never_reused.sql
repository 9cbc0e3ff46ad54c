-- Nothing to do: PostgreSQL's identity columns never give an id twice (SQLite's 0006 keeps a
-- high-water mark per table instead). The version keeps both dialects' schemas in step.
SELECT 1;
