"""The method explained step by step (``zsas explain`` and the app's method view): the steps of
one run as images (:mod:`.explain`) and the figure that puts them side by side.

May import: ``method``, ``io`` and the ground floor (``types``, ``frames``, ``errors``). The
caller hands it a run's result; it never loads models itself.
"""
