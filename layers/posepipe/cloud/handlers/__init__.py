"""The Lambda handlers' logic, one module a function; ``functions/<name>/app.py`` re-exports ``handler``.

Each module reads its configuration from the environment when imported, as a Lambda cold start does.
"""
