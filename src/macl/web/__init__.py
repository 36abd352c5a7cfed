"""The browser front end: a read-only HTTP API over one run's index and model, and the page that uses it.

This package sits on top of the library (it calls :mod:`macl.pipeline`, :mod:`macl.index`,
:mod:`macl.archive`); nothing in the library imports it, so the library never needs FastAPI.
:func:`macl.web.app.create_app` builds the app; ``macl serve`` runs it (extra ``macl[web]``).
"""
