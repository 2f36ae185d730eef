"""Deprecated alias of :mod:`act_lens.app.cli`: ``act-lens`` scripts installed before the
sub-package layout call ``act_lens.cli:entry``; reinstalling points them at the new path."""

from act_lens.app.cli import entry, main  # noqa: F401
