"""le3d.io: image and video writers/readers (images.py); PLY export lives in ply.py."""
