-- english: captions that fastText language id (lid.176) labels English, the language
-- part of DataComp's basic_filter. Uses the `lang` column, computed once per metadata
-- file into metadata/<stem>.lang.parquet when a filter mentions it.
-- @param language = en   fastText label to keep (ISO 639 code: en, de, fr, ...)
SELECT uid FROM pools WHERE lang = getvariable('language')
