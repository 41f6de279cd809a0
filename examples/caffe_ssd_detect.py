"""Object detection with a converted Caffe SSD: boxes and scores drawn on the image (PNG).

Converts an SSD deploy prototxt + caffemodel (MobileNet-SSD by default
settings: 300x300 input, BGR, (pixel - 127.5) / 127.5, the 20 VOC classes),
runs it on one image and writes the image with a box and "class: score" for
every detection above the threshold.

    python examples/caffe_ssd_detect.py deploy.prototxt model.caffemodel photo.jpg -o out.png
        [--threshold 0.5] [--size 300] [--mean 127.5] [--scale 0.007843]

Needs Pillow (``pip install deepkit[image]``).
"""
import argparse

import numpy as np
from PIL import Image, ImageDraw

from deepkit import caffe

VOC_CLASSES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car",
               "cat", "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person",
               "pottedplant", "sheep", "sofa", "train", "tvmonitor")
COLOURS = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
           (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212)]


def preprocess(image, size, mean, scale):
    """An RGB PIL image as the SSD's input batch: resized, BGR, (pixel - mean) * scale, NCHW."""
    resized = np.asarray(image.convert("RGB").resize((size, size), Image.BILINEAR), np.float32)
    bgr = resized[:, :, ::-1]
    return ((bgr - mean) * scale).transpose(2, 0, 1)[None].copy()


def detections(output, threshold, width, height):
    """``[(label, score, (x0, y0, x1, y1) in pixels)]`` from a DetectionOutput ``(1, 1, R, 7)``.

    Rows past the detections are zero (score 0), so the threshold drops them too.
    """
    found = []
    for _, label, score, x0, y0, x1, y1 in np.asarray(output).reshape(-1, 7):
        if score < threshold or score <= 0:
            continue
        box = (max(0.0, x0) * width, max(0.0, y0) * height, min(1.0, x1) * width,
               min(1.0, y1) * height)
        found.append((int(label), float(score), box))
    return found


def draw(image, found, labels):
    """A copy of ``image`` with each detection's box and "label: score"."""
    out = image.convert("RGB").copy()
    pen = ImageDraw.Draw(out)
    for label, score, box in found:
        colour = COLOURS[label % len(COLOURS)]
        pen.rectangle(box, outline=colour, width=max(1, round(min(out.size) / 150)))
        name = labels[label] if label < len(labels) else str(label)
        text = f"{name}: {score:.2f}"
        x, y = box[0], max(0.0, box[1] - 12)
        pen.rectangle((x, y, x + 7 * len(text), y + 12), fill=colour)
        pen.text((x + 1, y), text, fill=(0, 0, 0))
    return out


def main(prototxt, caffemodel, image, output, threshold=0.5, size=300, mean=127.5,
         scale=0.007843, labels=VOC_CLASSES):
    """Detect objects in ``image`` and write it with the boxes drawn to ``output`` (PNG).

    Args:
        prototxt, caffemodel: The SSD's deploy prototxt and weights.
        image: The image file (or a PIL image).
        output: The PNG to write.
        threshold: The smallest score drawn.
        size: The net's input size (square).
        mean, scale: The input normalization, ``(pixel - mean) * scale``.
        labels: Class names by label.

    Returns:
        The detections drawn: ``[(label, score, (x0, y0, x1, y1))]``.
    """
    picture = Image.open(image) if not isinstance(image, Image.Image) else image
    model = caffe.convert(prototxt, caffemodel)
    out = model.predict(preprocess(picture, size, mean, scale))
    if isinstance(out, list):  # the detection output is the net's last output
        out = out[-1]
    found = detections(out, threshold, *picture.size)
    draw(picture, found, labels).save(output, format="PNG")
    return found


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("prototxt")
    parser.add_argument("caffemodel")
    parser.add_argument("image")
    parser.add_argument("-o", "--output", default="detections.png")
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--size", type=int, default=300)
    parser.add_argument("--mean", type=float, default=127.5)
    parser.add_argument("--scale", type=float, default=0.007843)
    args = parser.parse_args()
    for label, score, box in main(args.prototxt, args.caffemodel, args.image, args.output,
                                  args.threshold, args.size, args.mean, args.scale):
        name = VOC_CLASSES[label] if label < len(VOC_CLASSES) else label
        print(f"{name:12s} {score:.3f} " + " ".join(f"{v:.0f}" for v in box))
    print(f"wrote {args.output}")
