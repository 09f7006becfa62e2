"""Human review of a pipeline run: people check, correct and sign off the data, and the run learns from them.

``gristmill review RUN_DIR`` (:mod:`gristmill.commands.review`) serves a local web app over the run:

* :mod:`~gristmill.review.content`: what a row's content is (the payload columns), its hash, diffs;
* :mod:`~gristmill.review.store`: the decisions, append-only in ``RUN_DIR/review/decisions.sqlite`` (WAL),
  with the acceptance sample and the review settings; the one file that must never be lost;
* :mod:`~gristmill.review.state`: what the decisions on a row add up to (per reviewer, the row's outcome);
* :mod:`~gristmill.review.queues`: the queues built from the run (rows a rule dropped, rows near a
  threshold, PII, toxicity, copyright and contamination hits, near-duplicates, judge scores, quarantined
  input, the acceptance sample, and any step's ``review.queue`` column);
* :mod:`~gristmill.review.index`: the queues indexed once into ``RUN_DIR/review/index.sqlite`` (a cache,
  rebuilt from the run and the decisions whenever it is missing or stale) for fast pages, search and filters;
* :mod:`~gristmill.review.figures`: agreement (Cohen's and Fleiss' kappa), each rule's precision as judged
  by reviewers, the error rate of the kept data from the acceptance sample (Wilson interval), pending rows;
* :mod:`~gristmill.review.app` and :mod:`~gristmill.review.server`: the Starlette app (token, cross-site
  checks) and the uvicorn server; the page's HTML, JavaScript and CSS ship in ``review/static``.

The decisions go back into the data through the ``review.apply`` operator (:mod:`gristmill.ops.review.apply`),
and the figures into ``audit.json``, the report and the dataset card through its audit section
(:mod:`gristmill.ops.review.audit_metrics`). Importing this package loads nothing: the web framework is
imported only by :mod:`~gristmill.review.app` and :mod:`~gristmill.review.server` (the ``review`` extra).
"""
