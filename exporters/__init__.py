"""Exporters: trained networks → realtime-pose bundles.

- :mod:`.keras_onnx`: a training output folder (``model.keras`` + ``train_config.json``)
  → an ONNX bundle, with a parity check against TensorFlow.
- :mod:`.keras_rewrite`: trace dilated convolutions as single dilated ONNX ``Conv`` s.
- :mod:`.parity`: TF vs ONNX Runtime comparison (raw outputs and keypoints).
- :mod:`.in_graph_peaks`: append single-animal peak extraction to an ONNX graph.
- :mod:`.int8`: ONNX Runtime static int8 quantisation of a bundle (CPU).
- :mod:`.tensorrt`: a TensorRT engine for the local GPU from a bundle.
- :mod:`.dlc_import`: a DeepLabCut exported model (``pose_cfg.yaml`` + frozen ``.pb``)
  → a bundle.

TensorFlow, tf2onnx and onnx are imported inside the functions that need them, so importing this
package stays cheap.
"""
