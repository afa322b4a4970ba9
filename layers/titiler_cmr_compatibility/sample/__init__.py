"""A stand-in NASA on 127.0.0.1: a fake CMR, a Range-capable data host and real sample files.

The ``demo`` command runs the whole survey offline against them (``sample.demo``), and the
tests use the very same classes, so the demo shows what the tests check.

* ``server``: the loopback HTTP machinery both servers share (lifecycle, request log,
  accounting, fault injection);
* ``cmr``: ``FakeCMR``, CMR's search API, and ``make_collection``/``make_granule`` for
  synthetic UMM records;
* ``data``: ``DataServer``, static files with Range, bearer tokens and DAAC failure modes;
* ``files``: generators of small real files in every layout the check meets;
* ``demo``: the sample catalogue and ``serve_sample``.
"""
