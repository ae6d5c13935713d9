"""Renderers: every text a command prints, one module per result kind.

- `units`: the one number formatter (`si`) and percentages;
- `json`: the one JSON writer;
- `table`: text tables built from column definitions that fit a width;
- `analysis`: an `Analysis` as a table, JSON or CSV;
- `measurement`: a `Measurement` as a table or JSON;
- `prediction`: the prediction lines of the analysis table, carbon, and profiles;
- `check`, `compare`, `scale`, `validate`: those commands' reports (table, JSON, and
  markdown for check and compare);
- `plots`: PNGs through matplotlib (the optional ``plot`` extra).

Each result module exposes ``RENDERERS``, a table from ``--format`` name to renderer, so a
command picks its output by name and new result kinds add a module beside these.
"""
