"""Training DeepLabCut-style pose networks with TensorFlow/Keras.

``project`` reads DeepLabCut projects, ``targets`` builds score-map and location-refinement
targets, ``augment`` warps images and keypoints together, ``networks`` builds the Keras models,
``train`` runs the training loop and ``evaluate`` measures a model against labels. Only
``networks``, ``train`` and the Keras path of ``evaluate`` import TensorFlow, and only when called.
"""
