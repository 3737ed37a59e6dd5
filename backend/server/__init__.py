"""The remote job server (``python -m backend serve``): Starlette app, job queue, storage, auth.

Modules: :mod:`auth` (token), :mod:`storage` (content-addressed uploads, data roots, job folders),
:mod:`spec` (turning a client's job request into a safe argv), :mod:`queue` (one job per GPU, or one
at a time on CPU, as subprocesses), :mod:`app` (the HTTP routes). See docs/remote.md.
"""

#: URL prefix of every route.
API = "/api/v1"
