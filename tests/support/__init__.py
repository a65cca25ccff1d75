"""What tests share, so no test module imports another.

* :mod:`~tests.support.scenario`: the one scenario builder (an admin, users
  with TOTP or a PIN, a pending session at each step), over a driver;
* :mod:`~tests.support.http`: the driver through the HTTP API, plus HTTP-only
  assertions; :mod:`~tests.support.core_driver`: the driver through core's use
  cases, no HTTP (a later web edge adds its own driver, same scenarios);
* :mod:`~tests.support.outbox`: the one outbox reader (mail, reset links);
* :mod:`~tests.support.encoding`, :mod:`~tests.support.codes`: b64, Basic
  auth, TOTP codes right and wrong;
* :mod:`~tests.support.database`, :mod:`~tests.support.storage`,
  :mod:`~tests.support.logs`: whole-database snapshots, rows and locks for
  the storage suite, log capture.
"""
