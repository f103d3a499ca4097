#!/usr/bin/python3
"""Peers on the same split as bench/accuracy: OpenCV LBPH and Eigenfaces, scikit-learn
logistic regression on raw pixels.

    bench/peers.py DIR NUM/DEN

In every class folder, files in natural order: the first floor(n*NUM/DEN) train, the rest
test (as bench/accuracy and tools/training-import --first/--rest). Prints top-1 accuracy and
the time of train + predict for each peer.
"""
import os
import re
import sys
import time

import warnings

import cv2
import numpy as np
from sklearn.linear_model import LogisticRegression


def natural(s):
    return [int(t) if t.isdigit() else t for t in re.split(r'(\d+)', s)]


def load(root, num, den, side):
    train, test = [], []
    for k, cls in enumerate(sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))):
        files = sorted(os.listdir(os.path.join(root, cls)), key=natural)
        cut = len(files) * num // den
        for i, f in enumerate(files):
            img = cv2.imread(os.path.join(root, cls, f), cv2.IMREAD_GRAYSCALE)
            if img is None:
                continue
            if side:
                img = cv2.resize(img, side, interpolation=cv2.INTER_AREA)
            (train if i < cut else test).append((img, k))
    return train, test


def run(name, make, train, test):
    t0 = time.time()
    model = make()
    model.train([x for x, _ in train], np.array([y for _, y in train]))
    correct = sum(model.predict(x)[0] == y for x, y in test)
    return name, 100.0 * correct / len(test), correct, len(test), time.time() - t0


def main():
    warnings.filterwarnings("ignore")
    root = sys.argv[1]
    num, den = map(int, sys.argv[2].split('/'))
    # Faces keep their size; larger photos are resized for the peers (as our pipeline resamples).
    train, test = load(root, num, den, None)
    if max(x.shape[0] for x, _ in train) > 128 or len({x.shape for x, _ in train + test}) > 1:
        train, test = load(root, num, den, (128, 128))
    rows = [run('OpenCV LBPH', cv2.face.LBPHFaceRecognizer_create, train, test),
            run('OpenCV Eigenfaces', cv2.face.EigenFaceRecognizer_create, train, test)]
    t0 = time.time()
    X = np.array([x.ravel() / 255.0 for x, _ in train])
    lr = LogisticRegression(max_iter=500).fit(X, [y for _, y in train])
    pred = lr.predict(np.array([x.ravel() / 255.0 for x, _ in test]))
    correct = int(sum(p == y for p, (_, y) in zip(pred, test)))
    rows.append(('scikit-learn LogisticRegression (pixels)', 100.0 * correct / len(test), correct, len(test),
                 time.time() - t0))
    for name, acc, c, n, t in rows:
        print(f'peer      {name:42s} top-1 {acc:5.1f}% ({c}/{n})  train+predict {t:.3f} s')


if __name__ == '__main__':
    main()
