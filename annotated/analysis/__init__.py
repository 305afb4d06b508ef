"""Reading results: inside a trained model, and across runs.

- ``head_scores``, ``ablation``, ``rollout``: what each head does, what
  removing it costs, and attention rollout (Abnar and Zuidema 2020);
- ``scaling``: power-law fits of loss against compute or parameters;
- ``intervals``: Wilson and Student-t 95% intervals;
- ``claims`` and ``claims_text``: published numbers beside ours, each with
  its source and a verdict, and the table that prints them;
- ``stored_sweeps``, ``comparison``, ``run_result``: the sweeps stored with
  the library, and a comparison of a sweep's runs as a table and figures.
"""
