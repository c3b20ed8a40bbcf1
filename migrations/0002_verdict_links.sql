-- Where a quote was found, for the review report.
ALTER TABLE verdicts ADD COLUMN link TEXT;      -- live page URL with a #:~:text= fragment at the quote
ALTER TABLE verdicts ADD COLUMN location TEXT;  -- heading path ("Security › Certifications"), "(hidden on the page)" when so
