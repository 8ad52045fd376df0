"""Crop the face of scikit-image's astronaut photograph (Eileen Collins, NASA, public domain) to
the 64x64 input of the digiface-dcgan zoo GAN, for the editing example in docs/real_gans.md.

    pip install scikit-image        # only for this script: it ships the photograph
    python docs/real_gans/astronaut.py docs/real_gans/photo/astronaut_face.png
"""
import sys

from PIL import Image

try:
    from skimage import data
except ImportError:
    sys.exit("error: this script needs scikit-image for its sample photograph: pip install scikit-image")

FACE_BOX = (150, 20, 290, 160)  # left, top, right, bottom in the 512x512 photo: forehead to chin, square

photo = Image.fromarray(data.astronaut())
photo.crop(FACE_BOX).resize((64, 64), Image.LANCZOS).save(sys.argv[1])
print(f"wrote {sys.argv[1]} (64x64 crop {FACE_BOX} of the {photo.width}x{photo.height} photo)")
