"""A plugin with a misspelled hook name: the server must block it and say so."""

from jpilot.plugins.api import hookimpl


@hookimpl
def jpilot_diagnostic(request, engine, cancel):
    return []
