-- image_size: original images at least min_side pixels on their short side and with
-- aspect ratio (long side / short side) at most max_aspect. With min_side = 200 and
-- max_aspect = 3 this is the image part of DataComp's basic_filter.
-- @param min_side = 200     smallest allowed short side (pixels, inclusive)
-- @param max_aspect = 3.0   largest allowed long/short side ratio (inclusive)
SELECT uid FROM pools
WHERE least(original_width, original_height) >= getvariable('min_side')
  AND greatest(original_width, original_height) / least(original_width, original_height)
      <= getvariable('max_aspect')
