"""The one seam between Envelope and its server: daphne on Twisted and autobahn.

Everything Envelope changes in daphne lives here, in subclasses of daphne's
own classes that only our entry points use; nothing is patched on import:

- `python -m server ...` (server/__main__.py): daphne's command line, every
  option as documented by daphne, with our `Server` (server/daphne_server.py);
- `python manage.py runserver` (server/management/commands/runserver.py):
  daphne's runserver with the same `Server`.

What the subclasses change, and why: server/close_codes.py (close codes
1009/1012/1013 and the 4 KiB inbound limit), server/memory.py (what daphne
no longer keeps per connection), server/prepared_send.py (one framed text
written to many sockets). They reach into daphne, Twisted and autobahn
internals, so the versions they were tested with are pinned, and the server
refuses to start on any other (server/versions.py).

The application only sees plain ASGI plus one optional extension, whose name
is in server/extension.py (a module that imports neither Twisted nor
autobahn). This package imports nothing at import: the application may
import server.extension without installing a reactor.
"""
