"""Where an audit's per-image stage runs: ``local`` (this process, a DataLoader) or ``ray``
(Ray actors on a local or remote Ray cluster, kept warm between audits of one model).

An engine turns a prepared model and a data set into ``Predictions`` (the table, with the
arrays streamed into the run folder) and the data set's ``FrozenCheck``; everything after that
(metrics, explain, integrity) runs in this process the same way for both engines.

Modules: ``spec`` (``EngineSpec``, ``PerImage``, ``as_engine``), ``dispatch``
(``run_per_image``), ``local``, ``ray_engine`` with ``ray_session``, ``ray_pool`` (the kept actors) and
``ray_actor`` (one actor: whole audit batches per call). Both engines hash each file from the bytes they decode and then check
the freeze (``prepare.check_freeze(hashes=...)``).
"""
