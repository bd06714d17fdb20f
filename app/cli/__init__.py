"""Command lines that run without the server: ``python -m app.cli.index`` (build, export,
import) and ``python -m app.cli.evaluate`` (ranking on labelled drawings)."""
