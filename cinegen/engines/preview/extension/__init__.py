"""Extension: the input video, unchanged, then more seconds that continue its last motion.

Steps, top to bottom (continuation.py drives them):
1. Stream the input frames through, keeping only its last two seconds (extension inputs are
   720p: about 135 MB). Small copies of those are what motion is measured on.
2. The camera (camera.py): the global motion of the last second as an affine per frame
   (dense DIS flow, robust least squares: deterministic, no RANSAC).
3. The subjects (subjects.py): compact parts of the last frame that still move once the
   earlier frames are brought into its camera, each with its own velocity
   (`find_moving_parts`); those crossing the frame's edge are looked for on their own
   (edges.py); parts.py holds what both measure parts with.
4. The cut-out (cutout.py): the background behind each subject, the median of the earlier
   frames that show it (aligned by the camera's motion); what no frame shows is inpainted.
   A subject is what differs from that background (`cut_out_subjects`).
5. Each new frame: the background moved on by the camera, each subject moved on by the
   camera and its own velocity, then the prompt's weather. So the seam is no bigger a step
   than the input's own frame steps. A subject driving in through an edge brings a guess
   of the rest of it (its visible part mirrored); one that was wholly in the frame comes
   in again through the opposite edge after it has left; parts too large to be a subject and
   pieces of depth layers stay part of the background (they move with the camera's
   average).
"""

from cinegen.engines.preview.extension.continuation import Extension

__all__ = ["Extension"]
