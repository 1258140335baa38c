"""What an analysis or a recording writes, in the field's formats.

DeepLabCut tables (:mod:`.dlc`), SLEAP predictions (:mod:`.slp`), NWB with ndx-pose
(:mod:`.nwb`), the labelled video (:mod:`.labelled_video`), and which of them an analysis of one
video writes and whether they are already complete (:mod:`.pose_files`).
"""
