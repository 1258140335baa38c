"""What an analysis or a recording writes, in the field's formats.

DeepLabCut tables (:mod:`.dlc`), SLEAP predictions (:mod:`.slp`), NWB with ndx-pose
(:mod:`.nwb`), anipose's 3D table (:mod:`.anipose`), the labelled video (:mod:`.labelled_video`),
and which of them an analysis of one video writes and whether they are already complete
(:mod:`.pose_files`). For relabelling: captured frames with the model's labels in a DeepLabCut
``labeled-data`` folder and as SLEAP suggestions (:mod:`.labeled_data`), and the human labels
of such a folder, read and merged (:mod:`.collected_data`).
"""
