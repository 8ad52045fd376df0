"""Saliency from a background-removal direction (Voynov & Babenko 2020, section 5).

    direction.py  rank a direction set: which direction (sign, shift) whitens the background
    masks.py      masks = mean_channels(G(z + s h)) < theta, area filter, PNG pairs or a stream
    classes.py    class selection for class-conditional generators from unlabelled target images
    unet.py       the small U-Net
    train.py      training on synthetic pairs, evaluation on real pairs (MAE, max F, IoU)
    metrics.py    MAE, max F-measure (beta^2 = 0.3), IoU
    (latentdirs/cli/saliency.py) `latentdirs saliency find-direction | make-data | train | eval`
"""
from .classes import count_top_classes, select_classes
from .direction import DirectionRanking, rank_directions
from .masks import MaskConfig, PairFolder, area_filter, stream_pairs, threshold_masks, write_dataset
from .metrics import SaliencyScores, iou, mae, max_f_measure
from .train import UNetTrainConfig, evaluate, folder_batches, train_unet
from .unet import UNet, UNetConfig

__all__ = ["DirectionRanking", "MaskConfig", "PairFolder", "SaliencyScores", "UNetTrainConfig", "UNet", "UNetConfig",
           "area_filter", "count_top_classes", "evaluate", "folder_batches", "iou", "mae", "max_f_measure",
           "rank_directions", "select_classes", "stream_pairs", "threshold_masks", "train_unet", "write_dataset"]
