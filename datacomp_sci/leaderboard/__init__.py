"""A self-hosted DataComp-like leaderboard: ``datacomp-sci leaderboard serve``.

- :mod:`.store`: the board's database (SQLite in ``DIR/board.sqlite``) and its files,
  content-addressed under ``DIR/objects``; tokens stored hashed; baseline rows.
- :mod:`.ingest`: an uploaded archive, unpacked within limits (no traversal, links or
  special files), validated with ``submit``'s checks, then stored atomically.
- :mod:`.views`: the tables behind every page (ranking, submission, comparison) as rows
  for HTML, CSV and JSON alike, and the delta plot.
- :mod:`.app`: the web application (FastAPI + Jinja2 with autoescaping) and ``serve``.
- :mod:`.export`: a static copy of the pages for any static web server.
"""
