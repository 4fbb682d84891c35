"""SAM's decoder and encoder engines: the restructured torch decoder (:mod:`.decoder_core`),
onnxruntime graphs and their on-disk cache (:mod:`.onnx_decoder`, :mod:`.onnx_cache`), exported
in a child process (:mod:`.onnx_subprocess`), the
decoder/encoder choice (:mod:`.fast_decoder`, :mod:`.fast_encoder`) and prompt tokens in numpy.

May import: ``models``, ``io`` and the ground floor (``types``, ``frames``, ``errors``).
"""
