-- caption_length: captions whose length in characters lies in [min_chars, max_chars].
-- Works on CommonPool (column text) and datacomp-sci pools alike.
-- @param min_chars = 10      shortest caption kept (characters, inclusive)
-- @param max_chars = 2000    longest caption kept (characters, inclusive)
SELECT uid FROM pools
WHERE length(text) BETWEEN getvariable('min_chars') AND getvariable('max_chars')
