"""The control-room console: a web front end over :mod:`deploy` (plan store, deploy service).

It holds no rules of its own: every check (login, lockout, roles, the two-person rule, hash
binding, state transitions) is the store's, and every action goes through
:class:`deploy.store.PlanStore` or :mod:`deploy.service` with a
:class:`~deploy.identity.Principal` whose channel is ``web``, so the audit log names the
authenticated user and the channel.  What the console adds is transport security: sessions,
CSRF tokens, cookies, escaping, and the refusal of requests that do not fit the page they came
from (a hash that is not the one displayed).
"""
