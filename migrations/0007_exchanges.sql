-- The HTTP exchanges behind a fetch, for the WARC export: a JSON array, one entry per redirect
-- hop and then the final response, each with the request head as sent and the response status
-- line and headers as received. NULL for fetches recorded before this migration and for
-- failed fetches.
ALTER TABLE fetches ADD COLUMN exchanges TEXT;
